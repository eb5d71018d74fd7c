"""Train-time image augmentation built from the recipe with Keras' own preprocessing layers (any backend).

The layers run in the input pipeline as a `keras.layers.Pipeline` (a `Sequential` breaks inside tf.data under JAX)
on image arrays only; batch-level MixUp/CutMix, which also change the labels, live in `edgecnn.train.mixing`.
Augmentation is never part of the model that gets exported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgecnn.config import AugmentConfig

if TYPE_CHECKING:
    import keras
    import numpy as np

# Pixels are float32 0..255 (the model input); every colour layer is told so.
VALUE_RANGE = (0, 255)

# recipe field → factory(value, seed, image_size) returning Keras layers; a field at its "off" value adds nothing.
_LAYERS: dict[str, Callable[[Any, int, int], list[keras.layers.Layer]]] = {}


def _layer(field: str):
    def register(factory):
        _LAYERS[field] = factory
        return factory

    return register


@_layer("crop_padding")
def _padded_crop(padding: int, seed: int, image_size: int) -> list:
    import keras

    return [keras.layers.ZeroPadding2D(padding), keras.layers.RandomCrop(image_size, image_size, seed=seed)]


@_layer("horizontal_flip")
def _flip(value: bool, seed: int, image_size: int) -> list:
    import keras

    return [keras.layers.RandomFlip("horizontal", seed=seed)]


@_layer("rotation")
def _rotation(value: float, seed: int, image_size: int) -> list:
    import keras

    return [keras.layers.RandomRotation(value, fill_mode="reflect", seed=seed)]


@_layer("zoom")
def _zoom(value: float, seed: int, image_size: int) -> list:
    import keras

    return [keras.layers.RandomZoom(value, fill_mode="reflect", seed=seed)]


@_layer("translate")
def _translate(value: float, seed: int, image_size: int) -> list:
    import keras

    return [keras.layers.RandomTranslation(value, value, fill_mode="reflect", seed=seed)]


@_layer("rand_augment")
def _rand_augment(config, seed: int, image_size: int) -> list:
    import keras

    return [keras.layers.RandAugment(VALUE_RANGE, num_ops=config.num_ops, factor=config.factor, seed=seed)]


@_layer("aug_mix")
def _aug_mix(config, seed: int, image_size: int) -> list:
    import keras

    return [keras.layers.AugMix(
        VALUE_RANGE, num_chains=config.num_chains, chain_depth=config.chain_depth, factor=config.factor,
        alpha=config.alpha, seed=seed,
    )]


@_layer("color_jitter")
def _color_jitter(config, seed: int, image_size: int) -> list:
    import keras

    return [keras.layers.RandomColorJitter(
        VALUE_RANGE,
        brightness_factor=config.brightness or None,
        contrast_factor=config.contrast or None,
        # Keras' saturation factor is 0.5 for "unchanged"; the recipe gives the spread around it.
        saturation_factor=(0.5 - config.saturation, 0.5 + config.saturation) if config.saturation else None,
        hue_factor=config.hue or None,
        seed=seed,
    )]


@_layer("grayscale")
def _grayscale(probability: float, seed: int, image_size: int) -> list:
    import keras

    # Fed arrays only: RandomGrayscale fails on the {"images", "labels"} dict that MixUp/CutMix need.
    return [keras.layers.RandomGrayscale(probability, seed=seed)]


@_layer("contrast")
def _contrast(value: float, seed: int, image_size: int) -> list:
    import keras

    return [keras.layers.RandomContrast(value, value_range=VALUE_RANGE, seed=seed)]


@_layer("brightness")
def _brightness(value: float, seed: int, image_size: int) -> list:
    import keras

    return [keras.layers.RandomBrightness(value, value_range=VALUE_RANGE, seed=seed)]


@_layer("random_erasing")
def _random_erasing(config, seed: int, image_size: int) -> list:
    import keras

    return [keras.layers.RandomErasing(
        factor=config.probability, scale=tuple(config.scale), value_range=VALUE_RANGE, seed=seed
    )]


def image_layer_fields() -> list[str]:
    """The recipe fields that add image layers, in the order they apply."""
    return [field for field in AugmentConfig.model_fields if field in _LAYERS]


def build_augmentation(config: AugmentConfig, seed: int, image_size: int) -> keras.layers.Pipeline | None:
    """A Pipeline of the enabled image layers in recipe order, or None when none is enabled."""
    import keras

    layers = []
    for i, field in enumerate(image_layer_fields()):
        value = getattr(config, field)
        if value:
            layers += _LAYERS[field](value, seed + i, image_size)
    return keras.layers.Pipeline(layers, name="augmentation") if layers else None


def _traced(pipeline: keras.layers.Pipeline) -> Callable:
    import tensorflow as tf

    # reduce_retracing: the last, smaller batch of an epoch does not trace a second graph per shape.
    return tf.function(lambda images: pipeline(images, training=True), reduce_retracing=True)


def _eager(pipeline: keras.layers.Pipeline) -> Callable:
    return lambda images: pipeline(images, training=True)


# backend → how the pipeline is called on a batch; a backend not listed calls it eagerly.
_CALLERS: dict[str, Callable[[keras.layers.Pipeline], Callable]] = {"tensorflow": _traced}


def batch_augmenter(pipeline: keras.layers.Pipeline) -> Callable[[np.ndarray], np.ndarray]:
    """`pipeline` in training mode as a float32 batch → NumPy function. On TensorFlow it runs as one traced graph:
    dispatching each layer's ops eagerly costs more per batch than the augmentation itself (benchmarks/RESULTS.md,
    train_throughput). The same seeded draws either way."""
    import keras

    call = _CALLERS.get(keras.backend.backend(), _eager)(pipeline)
    return lambda images: keras.ops.convert_to_numpy(call(images))

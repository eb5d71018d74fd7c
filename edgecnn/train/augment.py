"""Train-time augmentation built from the recipe with Keras preprocessing layers (backend-agnostic).

Augmentation runs on training batches only; it is never part of the model that gets exported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from edgecnn.config import AugmentConfig

if TYPE_CHECKING:
    import keras

# recipe field → factory(value, seed) for a Keras layer; a field at its "off" value adds nothing.
_LAYERS: dict[str, Callable[[float, int], keras.layers.Layer]] = {}


def _layer(field: str):
    def register(factory):
        _LAYERS[field] = factory
        return factory

    return register


@_layer("horizontal_flip")
def _flip(value, seed):
    import keras

    return keras.layers.RandomFlip("horizontal", seed=seed)


@_layer("rotation")
def _rotation(value, seed):
    import keras

    return keras.layers.RandomRotation(value, fill_mode="reflect", seed=seed)


@_layer("zoom")
def _zoom(value, seed):
    import keras

    return keras.layers.RandomZoom(value, fill_mode="reflect", seed=seed)


@_layer("translate")
def _translate(value, seed):
    import keras

    return keras.layers.RandomTranslation(value, value, fill_mode="reflect", seed=seed)


@_layer("contrast")
def _contrast(value, seed):
    import keras

    return keras.layers.RandomContrast(value, value_range=(0, 255), seed=seed)


@_layer("brightness")
def _brightness(value, seed):
    import keras

    return keras.layers.RandomBrightness(value, value_range=(0, 255), seed=seed)


def build_augmentation(config: AugmentConfig, seed: int) -> keras.Sequential | None:
    """A Sequential of the enabled augmentation layers in recipe order, or None when nothing is enabled."""
    import keras

    layers = [
        _LAYERS[field](value, seed + i)
        for i, (field, value) in enumerate(config.model_dump().items())
        if value and field in _LAYERS
    ]
    return keras.Sequential(layers, name="augmentation") if layers else None

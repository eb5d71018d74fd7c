"""Augmentation from Keras' own layers: every recipe field builds its layer inside a keras.layers.Pipeline, MixUp and
CutMix mix one-hot labels per batch and stop for the last epochs, the Keras traps stay covered, and
`edgecnn augment RECIPE` writes the preview grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecnn.config import AugmentConfig, parse_recipe
from edgecnn.errors import RecipeError

keras = pytest.importorskip("keras")

from edgecnn.train.augment import build_augmentation, image_layer_fields  # noqa: E402
from edgecnn.train.batches import ImageBatches  # noqa: E402
from edgecnn.train.mixing import BatchMixer, TrackEpoch, build_mixer  # noqa: E402

SIZE = 16
EVERY_IMAGE_LAYER = {
    "crop_padding": 2, "horizontal_flip": True, "rotation": 0.05, "zoom": 0.1, "translate": 0.1,
    "rand_augment": {"num_ops": 2, "factor": 0.3}, "aug_mix": {"num_chains": 2, "chain_depth": 2},
    "color_jitter": {"brightness": 0.1, "contrast": 0.1, "saturation": 0.2, "hue": 0.05}, "grayscale": 0.5,
    "contrast": 0.1, "brightness": 0.1, "random_erasing": {"probability": 1.0},
}
EXPECTED_LAYERS = [
    "ZeroPadding2D", "RandomCrop", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandAugment",
    "AugMix", "RandomColorJitter", "RandomGrayscale", "RandomContrast", "RandomBrightness", "RandomErasing",
]


def _images(count: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, SIZE, SIZE, 3)).astype(np.float32)


def _one_hot(count: int = 8, classes: int = 3) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[np.arange(count) % classes]


def _recipe(**augment) -> dict:
    return {
        "name": "aug", "data": {"source": "builtin", "path": "digits", "image_size": SIZE},
        "model": {"name": "tiny_cnn"}, "train": {"epochs": 3}, "augment": augment,
    }


def test_every_image_field_builds_its_keras_layer_in_a_pipeline() -> None:
    pipeline = build_augmentation(AugmentConfig(**EVERY_IMAGE_LAYER), seed=0, image_size=SIZE)
    # A Pipeline, not a Sequential: Sequential converts tf.data tensors and breaks inside tf.data under JAX.
    assert isinstance(pipeline, keras.layers.Pipeline) and not isinstance(pipeline, keras.Model)
    assert [type(layer).__name__ for layer in pipeline.layers] == EXPECTED_LAYERS
    assert set(EVERY_IMAGE_LAYER) == set(image_layer_fields())
    out = keras.ops.convert_to_numpy(pipeline(_images(), training=True))
    assert out.shape == (8, SIZE, SIZE, 3)
    assert np.isfinite(out).all()


def test_nothing_enabled_builds_nothing() -> None:
    assert build_augmentation(AugmentConfig(), seed=0, image_size=SIZE) is None
    assert build_mixer(AugmentConfig(), epochs=3, seed=0) is None


def test_keras_trap_random_grayscale_fails_on_dict_input() -> None:
    """Keras' RandomGrayscale cannot take the {"images", "labels"} dict; image layers therefore get arrays only."""
    batch = {"images": _images(), "labels": _one_hot()}
    with pytest.raises(AttributeError):
        keras.layers.RandomGrayscale(1.0)(batch, training=True)
    config = AugmentConfig(grayscale=1.0, mixup=0.4)
    batches = ImageBatches(_images().astype(np.uint8), np.arange(8) % 3, 3, 8,
                           augmentation=build_augmentation(config, 0, SIZE), mixer=build_mixer(config, 3, 0))
    pixels, labels = batches[0]
    assert np.allclose(pixels[..., 0], pixels[..., 1], atol=1e-3)  # grey, with 3 channels
    assert labels.shape == (8, 3)


def test_keras_trap_cutmix_and_mixup_reject_value_range() -> None:
    """Unlike the colour layers, CutMix and MixUp take no value_range; build_mixer must not pass one."""
    for layer in (keras.layers.CutMix, keras.layers.MixUp):
        with pytest.raises(ValueError, match="value_range"):
            layer(value_range=(0, 255))
    mixer = build_mixer(AugmentConfig(mixup=0.2, cutmix=1.0), epochs=3, seed=0)
    assert [type(layer).__name__ for layer in mixer.layers] == ["MixUp", "CutMix"]


def test_keras_trap_mixing_a_bare_array_leaves_labels_alone() -> None:
    """Keras mixes labels only when handed the dict; the mixer hands it the dict, so mixed labels follow pixels."""
    images = _images()
    bare = keras.ops.convert_to_numpy(keras.layers.CutMix(1.0, seed=3)(images, training=True))
    assert bare.shape == images.shape  # pixels mixed, and there were no labels to mix
    for config in (AugmentConfig(mixup=0.4), AugmentConfig(cutmix=1.0)):
        mixer = build_mixer(config, epochs=3, seed=1)
        pixels, labels = mixer(images, _one_hot(), epoch=0)
        assert np.allclose(labels.sum(axis=1), 1.0, atol=1e-5)
        assert (labels.max(axis=1) < 0.999).any(), "no label was mixed"
        assert not np.allclose(pixels, images)


def test_mix_probability_and_last_epochs_without_mixing() -> None:
    labels = _one_hot()
    never = BatchMixer([keras.layers.MixUp(0.4, seed=0)], probability=0.0, mix_until=3, seed=0)
    assert all(np.array_equal(never(_images(), labels, 0)[1], labels) for _ in range(5))
    late = BatchMixer([keras.layers.MixUp(0.4, seed=0)], probability=1.0, mix_until=2, seed=0)
    assert np.array_equal(late(_images(), labels, epoch=2)[1], labels)
    assert not np.array_equal(late(_images(), labels, epoch=1)[1], labels)
    half = BatchMixer([keras.layers.CutMix(1.0, seed=0)], probability=0.5, mix_until=9, seed=0)
    mixed = sum(not np.array_equal(half(_images(), labels, 0)[1], labels) for _ in range(40))
    assert 10 <= mixed <= 30


def test_fit_stops_mixing_for_the_last_epochs() -> None:
    """Through Model.fit: TrackEpoch tells the batches the epoch, so the final epoch sees only one-hot labels."""
    seen: list[tuple[int, bool]] = []

    class Recording(BatchMixer):
        def __call__(self, images, labels, epoch):
            images, labels = super().__call__(images, labels, epoch)
            seen.append((epoch, bool((labels.max(axis=1) < 0.999).any())))
            return images, labels

    batches = ImageBatches(_images(24).astype(np.uint8), np.arange(24) % 3, 3, 8,
                           mixer=Recording([keras.layers.MixUp(0.4, seed=0)], 1.0, mix_until=2, seed=0))
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    model.fit(batches, epochs=3, verbose=0, callbacks=[TrackEpoch(batches)])
    by_epoch = {epoch: [m for e, m in seen if e == epoch] for epoch in range(3)}
    # Keras reads the first batch once more to learn the data's shape, before epoch 0 starts.
    assert len(by_epoch[0]) >= 3 and len(by_epoch[1]) == len(by_epoch[2]) == 3, by_epoch
    assert any(by_epoch[0]) and any(by_epoch[1]) and not any(by_epoch[2])


def test_recipe_fields_validated_and_named_in_errors() -> None:
    recipe = parse_recipe(_recipe(rand_augment=True, random_erasing=False, mixup=0.2, mix_off_epochs=1))
    assert recipe.augment.rand_augment.num_ops == 2 and recipe.augment.random_erasing is None
    cases = {
        "augment.rand_augment.num_opz: unknown key — did you mean 'num_ops'?": {"rand_augment": {"num_opz": 1}},
        "augment.random_erasing.scale: Value error, scale must be": {"random_erasing": {"scale": [0.5, 0.1]}},
        "augment.grayscale: Input should be less than or equal to 1": {"grayscale": 1.5},
        "augment.mix_off_epochs (3) leaves no mixed epoch of train.epochs (3)": {"cutmix": 1.0, "mix_off_epochs": 3},
        "augment.color_jitter.saturation": {"color_jitter": {"saturation": 0.9}},
    }
    for expected, augment in cases.items():
        with pytest.raises(RecipeError) as caught:
            parse_recipe(_recipe(**augment))
        assert expected.replace("Value error, ", "") in str(caught.value), str(caught.value)


def test_augment_command_writes_the_preview_grid(tmp_path: Path, image_folder: Path, capsys) -> None:
    import yaml

    from edgecnn.cli import main

    recipe = _recipe(crop_padding=2, horizontal_flip=True, mixup=0.4, cutmix=1.0)
    recipe["data"] = {"source": "folder", "path": str(image_folder), "image_size": SIZE}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "grid.png"
    assert main(["augment", str(path), "--count", "6", "--out", str(out)]) == 0
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in capsys.readouterr().out
    from edgecnn.train.preview import augmented_samples
    from edgecnn.train.runner import load_data

    parsed = parse_recipe(recipe)
    images, labels = augmented_samples(parsed, load_data(parsed).train, 6)
    assert images.dtype == np.uint8 and images.shape == (6, SIZE, SIZE, 3)
    assert (labels.max(axis=1) < 0.999).any()  # the preview always shows mixing when the recipe mixes

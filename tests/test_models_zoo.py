"""Every registered model: input/output contract, published parameter counts, weights from a local file, and a
full-integer TFLite conversion with built-in ops only. Loops over the registry, so a new entry is tested (and
must add its parameter count below) without anyone remembering to. Whether each `quantization_friendly` flag
matches the layers is checked by tests/test_profile.py with the profiler's int8 findings."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, replace

import numpy as np
import pytest

from edgecnn import errors, models
from edgecnn.models import small_input
from edgecnn.models.efficientnet_lite import VARIANTS
from edgecnn.models.heads import BACKBONE_NAME, DEFAULT_DROPOUT, WeightsError

keras = pytest.importorskip("keras", reason="the model zoo needs the [train] extra (Keras + TensorFlow)")

NAMES = models.names()
TINY_CLASSES = 3
# TFLite conversion and weight-file round trips cost 5-30 s a model on 2 cores: `-m "not slow"` keeps them to
# one model per code path (FAST); a plain run, as CI does it, covers every entry.
FAST = {"lenet5", "mobilenet_v3_small_minimalistic", "tiny_cnn"}


def every_entry_slow_beyond_fast() -> list:
    """All registry names as parameters, the ones outside FAST marked slow."""
    return [name if name in FAST else pytest.param(name, marks=pytest.mark.slow) for name in NAMES]


@dataclass(frozen=True)
class Count:
    """A parameter count we measured (Keras convention: BN statistics included) and the published figure."""

    image_size: int
    classes: int
    total: int
    published: int | None
    tolerance: float  # relative distance allowed from the (usually rounded) published figure
    trainable: bool = False  # the source counts trainable parameters only (PyTorch-style)
    source: str = ""


# Measured with Keras 3.15; 224 px and 1000 classes unless the textbook figure is for another setting.
COUNTS: dict[str, Count] = {
    "mobilenet_v1": Count(224, 1000, 4_253_864, 4_253_864, 0.0, source="Keras applications; paper 4.2 M"),
    "mobilenet_v2": Count(224, 1000, 3_538_984, 3_500_000, 0.015, source="Keras applications table: 3.5 M"),
    # Same counts as keras.applications.MobileNetV3* with include_top; the paper rounds to 2.5 M / 5.4 M.
    "mobilenet_v3_small": Count(224, 1000, 2_554_968, 2_500_000, 0.03, source="paper: 2.5 M"),
    "mobilenet_v3_large": Count(224, 1000, 5_507_432, 5_400_000, 0.03, source="paper: 5.4 M"),
    "mobilenet_v3_small_minimalistic": Count(224, 1000, 2_056_848, 2_000_000, 0.03, source="TF-slim table: 2.0 M"),
    "mobilenet_v3_large_minimalistic": Count(224, 1000, 3_948_688, 3_900_000, 0.015, source="TF-slim table: 3.9 M"),
    "efficientnet_b0": Count(224, 1000, 5_330_571, 5_300_000, 0.01, source="Keras applications table: 5.3 M"),
    "efficientnetv2_b0": Count(224, 1000, 7_200_312, 7_200_000, 0.01, source="Keras applications table: 7.2 M"),
    # PyTorch ports count trainable parameters (4.652 M … 13.007 M); Keras adds the BN moving statistics.
    "efficientnet_lite0": Count(224, 1000, 4_694_024, 4_652_000, 1e-4, trainable=True, source="4.652 M"),
    "efficientnet_lite1": Count(224, 1000, 5_470_344, 5_417_000, 1e-4, trainable=True, source="5.417 M"),
    "efficientnet_lite2": Count(224, 1000, 6_150_168, 6_092_000, 1e-4, trainable=True, source="6.092 M"),
    "efficientnet_lite3": Count(224, 1000, 8_273_768, 8_197_000, 1e-4, trainable=True, source="8.197 M"),
    "efficientnet_lite4": Count(224, 1000, 13_118_936, 13_007_000, 1e-4, trainable=True, source="13.007 M"),
    "lenet5": Count(32, 10, 61_706, 61_706, 0.0, source="course Keras summary, 32×32×1 in"),
    "vgg16": Count(224, 1000, 138_357_544, 138_400_000, 0.001, source="Keras applications table: 138.4 M"),
    "resnet50": Count(224, 1000, 25_636_712, 25_600_000, 0.002, source="Keras applications table: 25.6 M"),
    "tiny_cnn": Count(32, 10, 5_562, None, 0.0),
    "resnet9": Count(32, 10, 6_577_610, 6_500_000, 0.015, source="Myrtle.ai DAWNBench ResNet-9: 6.5 M"),
}
# Small-input variants (`<parent>_cifar`, edgecnn/models/small_input.py): the parent's weights, built at 32 px.
COUNTS.update({
    small_input.variant_name(parent): replace(COUNTS[parent], image_size=32, source=f"{parent}'s weights")
    for parent in small_input.PARENTS
})


@functools.cache
def tiny_model(name: str):
    """`name` at its smallest input size with a few classes: cheap enough to build, run and convert."""
    return models.create(name, TINY_CLASSES, models.get(name).min_image_size)


def _pixels(model, batch: int, seed: int = 0) -> np.ndarray:
    size = model.input_shape[1]
    return np.random.default_rng(seed).integers(0, 256, (batch, size, size, 3)).astype(np.float32)


def _trainable_count(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("name", NAMES)
def test_model_honours_the_input_output_contract(name):
    model = tiny_model(name)
    size = models.get(name).min_image_size
    assert model.name == name
    assert model.inputs[0].name == "image" and model.input_shape == (None, size, size, 3)
    assert model.inputs[0].dtype == "float32"
    assert model.output_shape == (None, TINY_CLASSES)
    backbone = model.get_layer(BACKBONE_NAME)
    assert backbone.input_shape == (None, size, size, 3), "the backbone takes raw pixels (normalises inside)"
    probabilities = np.asarray(model(_pixels(model, 2), training=False))
    assert probabilities.shape == (2, TINY_CLASSES)
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_parameter_table_covers_the_registry():
    assert sorted(COUNTS) == NAMES


# Head dropout of the architectures that publish one other than DEFAULT_DROPOUT.
PUBLISHED_DROPOUT = {name: variant.dropout for name, variant in VARIANTS.items() if variant.dropout != DEFAULT_DROPOUT}


def _head_dropout(model) -> float:
    return model.get_layer("head_dropout").rate


def test_published_dropouts_are_efficientnet_lite2_to_4():
    assert PUBLISHED_DROPOUT == {"efficientnet_lite2": 0.3, "efficientnet_lite3": 0.3, "efficientnet_lite4": 0.3}


@pytest.mark.parametrize("name", NAMES)
def test_every_builder_has_its_own_defaults_and_create_keeps_them(name):
    parameters = inspect.signature(models.get(name).build).parameters
    defaults = {key: parameters[key].default for key in ("width", "weights", "dropout")}
    assert defaults == {"width": 1.0, "weights": None, "dropout": PUBLISHED_DROPOUT.get(name, DEFAULT_DROPOUT)}
    assert _head_dropout(tiny_model(name)) == defaults["dropout"]  # created without width, weights or dropout


def test_create_drops_unset_arguments_so_they_never_override_a_default():
    unset = {"width": None, "weights": None, "dropout": None}
    assert _head_dropout(models.create("efficientnet_lite2", 10, 64)) == 0.3
    assert _head_dropout(models.create("efficientnet_lite2", 10, 64, **unset)) == 0.3
    assert _head_dropout(models.create("mobilenet_v2", 10, 32, **unset)) == DEFAULT_DROPOUT
    explicit = models.create("efficientnet_lite2", 10, 32, dropout=0.0)
    assert "head_dropout" not in [layer.name for layer in explicit.layers]
    keras.backend.clear_session()


def test_user_errors_are_edgecnn_errors():
    assert WeightsError is errors.WeightsError  # models.heads re-exports the one class
    with pytest.raises(errors.RecipeError, match="unknown model 'mobilenet_v9'"):
        models.create("mobilenet_v9", 3)
    with pytest.raises(errors.RecipeError, match=r"tiny_cnn needs image_size >= 8, got 4"):
        models.create("tiny_cnn", 3, 4)
    with pytest.raises(errors.RecipeError, match="lenet5 has no width multiplier; got width=0.5"):
        models.create("lenet5", 3, width=0.5)
    with pytest.raises(errors.WeightsError, match="tiny_cnn has no pretrained weights"):
        models.create("tiny_cnn", 3, weights="imagenet")


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_the_published_figure(name):
    expected = COUNTS[name]
    model = models.create(name, expected.classes, expected.image_size)
    assert model.count_params() == expected.total
    if expected.published is not None:
        ours = _trainable_count(model) if expected.trainable else expected.total
        assert abs(ours - expected.published) <= expected.tolerance * expected.published, expected.source
    keras.backend.clear_session()


def test_lenet5_keeps_the_textbook_layer_sizes():
    model = models.create("lenet5", 10, 32)
    layers = [model.get_layer(BACKBONE_NAME).get_layer(n) for n in ("c1", "c3", "c5")]
    layers += [model.get_layer(n) for n in ("f6", "predictions")]
    assert [layer.count_params() for layer in layers] == [156, 2_416, 48_120, 10_164, 850]
    assert model.count_params() == 61_706  # the grey conversion adds no parameters


def test_resnet9_downsamples_by_8_and_scales_every_stage_with_width():
    model = models.create("resnet9", 10, 32, width=0.25)
    backbone = model.get_layer(BACKBONE_NAME)
    assert backbone.output_shape == (None, 4, 4, 128), "three 2x2 max pools: 32 px ends at 4x4"
    filters = [layer.filters for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    assert filters == [16, 32, 32, 32, 64, 128, 128, 128]  # prep, layer1 + residual pair, layer2, layer3 + pair
    adds = [layer.name for layer in backbone.layers if isinstance(layer, keras.layers.Add)]
    assert adds == ["layer1_add", "layer3_add"]
    keras.backend.clear_session()


def test_lenet5_sees_rgb_as_luma_grey():
    model = models.create("lenet5", 10, 32)
    backbone = model.get_layer(BACKBONE_NAME)
    grey = keras.Model(backbone.input, backbone.get_layer("grey_image").output)
    pixel = np.array([200.0, 100.0, 50.0], np.float32)
    image = np.broadcast_to(pixel, (1, 32, 32, 3))
    expected = (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255
    np.testing.assert_allclose(np.asarray(grey(image)), expected, rtol=1e-5)


def test_vgg16_conv_base_matches_the_reference_counts():
    backbone = tiny_model("vgg16").get_layer(BACKBONE_NAME)
    counts = {layer.name: layer.count_params() for layer in backbone.layers}
    assert counts["block1_conv1"] == 1_792 and counts["block1_conv2"] == 36_928
    assert counts["block3_conv1"] == 295_168 and counts["block4_conv1"] == 1_180_160
    assert counts["block5_conv1"] == counts["block5_conv2"] == counts["block5_conv3"] == 2_359_808
    assert backbone.count_params() == 14_714_688


@pytest.mark.parametrize("name", every_entry_slow_beyond_fast())
def test_saved_classifier_comes_back_the_same(name, tmp_path):
    """From a weights file through `create(weights=path)`, and whole from a .keras file (what export loads)."""
    if name == "tiny_cnn":
        pytest.skip("tiny_cnn takes no weights argument (it is the smoke-test model)")
    model = tiny_model(name)
    pixels = _pixels(model, 2, seed=1)
    expected = np.asarray(model(pixels, training=False))
    weights_file, keras_file = tmp_path / f"{name}.weights.h5", tmp_path / f"{name}.keras"
    model.save_weights(weights_file)
    model.save(keras_file)
    restored = models.create(name, TINY_CLASSES, model.input_shape[1], weights=str(weights_file))
    np.testing.assert_allclose(np.asarray(restored(pixels, training=False)), expected, atol=1e-6)
    reloaded = keras.models.load_model(keras_file, compile=False)
    np.testing.assert_allclose(np.asarray(reloaded(pixels, training=False)), expected, atol=1e-6)


def test_weights_file_from_another_head_is_rejected_with_what_was_expected(tmp_path):
    path = tmp_path / "five_classes.weights.h5"
    models.create("mobilenet_v2", 5, 32).save_weights(path)
    with pytest.raises(WeightsError, match=r"mobilenet_v2 classifier with 3 classes at 32 px"):
        models.create("mobilenet_v2", 3, 32, weights=str(path))


def test_missing_weights_file_is_reported():
    with pytest.raises(WeightsError, match="not found"):
        models.create("resnet50", 3, 32, weights="/nonexistent/resnet50.weights.h5")


@pytest.mark.parametrize("name", ["lenet5", "efficientnet_lite3"])
def test_imagenet_weights_that_do_not_exist_offline_are_refused(name):
    with pytest.raises(WeightsError, match="ImageNet"):
        models.create(name, 3, 32, weights="imagenet")


def test_efficientnet_b0_imagenet_graph_is_the_one_a_weights_file_reloads(tmp_path, monkeypatch):
    """Keras adds a Rescaling to EfficientNet-B0 only for ImageNet weights; ours folds it into the Normalization,
    so the model matches Keras' ImageNet graph and a weights file saved from it reloads to the same outputs."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    from keras.src.utils import file_utils

    size = 32
    release = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(size, size, 3))
    normalisation = next(layer for layer in release.layers if isinstance(layer, keras.layers.Normalization))
    normalisation.adapt_mean.assign([0.485, 0.456, 0.406])
    normalisation.adapt_variance.assign(np.square([0.229, 0.224, 0.225]))
    release_file = tmp_path / "efficientnetb0_notop.h5"
    with h5py.File(release_file, "w") as f:  # the legacy format Keras' ImageNet files use
        legacy_h5_format.save_weights_to_hdf5_group(f, release)
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: str(release_file))

    keras_imagenet = keras.applications.EfficientNetB0(
        include_top=False, weights="imagenet", input_shape=(size, size, 3)
    )
    ours = models.create("efficientnet_b0", TINY_CLASSES, size, weights="imagenet")
    pixels = _pixels(ours, 2, seed=2)
    np.testing.assert_allclose(
        np.asarray(ours.get_layer(BACKBONE_NAME)(pixels)), np.asarray(keras_imagenet(pixels)), atol=1e-4
    )
    saved = tmp_path / "ours.weights.h5"
    ours.save_weights(saved)
    reloaded = models.create("efficientnet_b0", TINY_CLASSES, size, weights=str(saved))
    np.testing.assert_allclose(np.asarray(reloaded(pixels)), np.asarray(ours(pixels)), atol=1e-6)


@pytest.mark.parametrize("name", every_entry_slow_beyond_fast())
def test_model_converts_to_full_int8_tflite_with_builtin_ops(name, tmp_path):
    from edgecnn.export.tflite import convert, op_names
    from edgecnn.runtime.backends.litert import _interpreter_class

    model = tiny_model(name)
    calibration = _pixels(model, 4, seed=3).astype(np.uint8)
    path = tmp_path / "model.tflite"
    path.write_bytes(convert(model, "int8", calibration))

    ops = op_names(path)
    assert not [op for op in ops if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE")], ops
    interpreter_class, _ = _interpreter_class()
    interpreter = interpreter_class(model_path=str(path))
    interpreter.allocate_tensors()
    (image,), (probabilities,) = interpreter.get_input_details(), interpreter.get_output_details()
    size = model.input_shape[1]
    assert image["dtype"] == np.uint8 and tuple(image["shape"]) == (1, size, size, 3)
    assert probabilities["dtype"] == np.uint8 and tuple(probabilities["shape"]) == (1, TINY_CLASSES)
    interpreter.set_tensor(image["index"], calibration[:1])
    interpreter.invoke()
    assert interpreter.get_tensor(probabilities["index"]).shape == (1, TINY_CLASSES)

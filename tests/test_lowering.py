"""Int8 hard-swish is rewritten so XNNPACK delegates the whole graph; the delegation report can tell either way."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from edgecnn.export import lowering, tflite
from edgecnn.quant.graph import leaf_layers
from edgecnn.runtime.backends.litert import open_model

SIZE = 32


def _hard_swish_model() -> keras.Model:
    """A MobileNetV3-like stack: conv/depthwise + BN + hard-swish, then a softmax head."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("hard_swish")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("hard_swish")(x)
    x = keras.layers.Conv2D(24, 1, activation="hard_swish")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inputs, keras.Model(inputs, outputs, name="backbone")(inputs))
    return model


@pytest.fixture(scope="module")
def model_and_images():
    keras.utils.set_random_seed(0)
    model = _hard_swish_model()
    images = np.random.default_rng(0).integers(0, 256, (32, SIZE, SIZE, 3), dtype=np.uint8)
    # Set BN statistics from data (momentum 0) so activations keep realistic ranges, as in a trained model.
    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(images.astype(np.float32), training=True)
    return model, images


def _report(tmp_path, model, precision, images) -> dict:
    path = tmp_path / f"{precision}.tflite"
    path.write_bytes(tflite.convert(model, precision, images))
    return open_model(path).delegation()


def test_int8_hard_swish_is_lowered_and_fully_delegated(tmp_path, model_and_images):
    model, images = model_and_images
    report = _report(tmp_path, model, "int8", images)
    assert "HARD_SWISH" not in report["undelegated"]
    assert report["partitions"] == 1
    # Only the uint8<->int8 interface and the int8 softmax stay on LiteRT's kernels.
    assert set(report["undelegated"]) <= {"QUANTIZE", "SOFTMAX"}


def test_without_the_rewrite_int8_hard_swish_splits_the_graph(tmp_path, model_and_images, monkeypatch):
    # The trap the rewrite avoids, shown by the same report: this is what makes the check able to fail.
    model, images = model_and_images
    monkeypatch.setattr(lowering, "REWRITES", ())
    report = _report(tmp_path, model, "int8", images)
    assert report["undelegated"].get("HARD_SWISH") == 3
    assert report["partitions"] > 1
    assert report["delegated_share"] < 1.0


def test_float32_keeps_the_fused_op_and_the_model_is_restored(tmp_path, model_and_images):
    model, images = model_and_images
    report = _report(tmp_path, model, "float32", images)
    assert report == {**report, "undelegated": {}, "partitions": 1, "delegated_share": 1.0}
    assert "HARD_SWISH" in tflite.op_names(tmp_path / "float32.tflite")
    activations = [layer.activation.__name__ for layer in leaf_layers(model) if hasattr(layer, "activation")]
    assert activations.count("hard_silu") == 3  # the int8 conversions above swapped them back


def test_lowered_int8_agrees_with_keras(tmp_path, model_and_images):
    model, images = model_and_images
    path = tmp_path / "int8.tflite"
    path.write_bytes(tflite.convert(model, "int8", images))
    backend = open_model(path)
    int8 = np.stack([backend.run(image[None]) for image in images])
    reference = model.predict(images.astype(np.float32), verbose=0)
    assert np.max(np.abs(int8 - reference)) < 0.05


def test_int16x8_converts_a_hard_swish_model(tmp_path, model_and_images):
    # Without the rewrite the converter stops: "Quantization to 16x8-bit not yet supported for op: 'HARD_SWISH'".
    model, images = model_and_images
    path = tmp_path / "int16x8.tflite"
    path.write_bytes(tflite.convert(model, "int16x8", images))
    assert "HARD_SWISH" not in tflite.op_names(path)
    backend = open_model(path)
    probs = np.stack([backend.run(image[None]) for image in images[:8]])
    reference = model.predict(images[:8].astype(np.float32), verbose=0)
    assert np.max(np.abs(probs - reference)) < 0.01

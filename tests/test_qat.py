"""Quantisation-aware training: BN folding, quantiser placement, int8 recovery over PTQ, parity with the int8 model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecnn.export.backend import require_tensorflow_backend

require_tensorflow_backend()  # before Keras is imported, whatever KERAS_BACKEND says

import keras  # noqa: E402

from edgecnn.train import qat  # noqa: E402

IMAGE_SIZE = 8  # the digits' native resolution: training and LiteRT evaluation take seconds
CALIBRATION_IMAGES = 200
# Scaling one first-layer channel up by 50 (and the next layer's weights for it down by 50) leaves the float model's
# function unchanged but gives the other channels 1/50 of the per-tensor int8 activation range: the channel-range
# imbalance that breaks PTQ of networks trained without BN (Nagel et al. 2019, "Data-free quantization").
IMBALANCE = 50.0
QAT_EPOCHS = 20
QAT_LEARNING_RATE = 5e-4
# Measured on the 900 held-out digits (deterministic on CPU): float 94.56 %, PTQ int8 89.44 % (−5.1 points, 46 images),
# QAT int8 92.00 % (+2.56 points: 23 of the 46 images won back, a recovered fraction of 0.50). The bounds keep a
# margin under that: PTQ must lose over 1 point for the comparison to mean anything, QAT must win back 2 points.
# Not asserted, and worth knowing: the same 20 epochs fine-tuned in float and then PTQ'd reach 92.56 % here, so on
# this failure mode (a range problem) most of the gain is fine-tuning re-equalising channels, not QAT as such.
MIN_PTQ_DROP_POINTS = 1.0
MIN_QAT_GAIN_POINTS = 2.0
MIN_RECOVERED_FRACTION = 0.45

@pytest.fixture(scope="module")
def digits():
    """(train images, train labels, held-out images, held-out labels) of scikit-learn's digits at 8 px."""
    pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn")
    from edgecnn.data import load_splits

    data = load_splits(source="builtin", path="digits", image_size=IMAGE_SIZE, val_fraction=0.25,
                       test_fraction=0.25, seed=0)
    held_out = np.concatenate([data.val.images, data.test.images])
    held_out_labels = np.concatenate([data.val.labels, data.test.labels])
    return data.train.images, data.train.labels, held_out, held_out_labels


def small_cnn(num_classes: int) -> keras.Model:
    """Two ReLU convolutions without BN, global pooling, softmax head."""
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="normalise")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv0")(x)
    x = keras.layers.MaxPooling2D(2, name="pool0")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def imbalance_channel(model: keras.Model, factor: float) -> None:
    """Scale conv0's channel 0 by `factor` and conv1's weights reading it by 1/factor (ReLU is homogeneous)."""
    kernel, bias = model.get_layer("conv0").get_weights()
    kernel[..., 0] *= factor
    bias[0] *= factor
    model.get_layer("conv0").set_weights([kernel, bias])
    kernel, bias = model.get_layer("conv1").get_weights()
    kernel[:, :, 0, :] /= factor
    model.get_layer("conv1").set_weights([kernel, bias])


def tflite_probabilities(model_bytes: bytes, images: np.ndarray, tmp_path: Path) -> np.ndarray:
    """Dequantised probabilities of a TFLite model under the device runtime's LiteRT backend, one image at a time."""
    from edgecnn.runtime.backends.litert import LiteRTBackend

    path = tmp_path / f"model-{len(list(tmp_path.glob('*.tflite')))}.tflite"
    path.write_bytes(model_bytes)
    backend = LiteRTBackend(path)
    return np.stack([backend.run(image[None]) for image in images])


def op_types(model_bytes: bytes, tmp_path: Path) -> list[str]:
    from edgecnn.export.tflite import describe

    path = tmp_path / "ops.tflite"
    path.write_bytes(model_bytes)
    return describe(path)["ops"]


def top1(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probabilities.argmax(axis=1) == labels))


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A converged float model, its PTQ int8 model, and a QAT fine-tune of it with its int8 model."""
    from edgecnn.export.tflite import convert

    train_images, train_labels, held_out, held_out_labels = digits
    tmp_path = tmp_path_factory.mktemp("qat")
    calibration = train_images[:CALIBRATION_IMAGES]
    keras.utils.set_random_seed(0)
    model = small_cnn(num_classes=10)
    epochs, batch_size = 50, 32
    steps = epochs * int(np.ceil(len(train_images) / batch_size))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.01, steps)),
                  loss="sparse_categorical_crossentropy")
    model.fit(train_images.astype(np.float32), train_labels, epochs=epochs, batch_size=batch_size, verbose=0)
    float_before = model.predict(held_out.astype(np.float32), verbose=0)
    imbalance_channel(model, IMBALANCE)
    float_probs = model.predict(held_out.astype(np.float32), verbose=0)
    ptq_bytes = convert(model, "int8", calibration)

    keras.utils.set_random_seed(0)
    qat_model = qat.prepare_qat(model, calibration)
    qat_model.compile(optimizer=keras.optimizers.Adam(QAT_LEARNING_RATE), loss="sparse_categorical_crossentropy")
    qat_model.fit(train_images.astype(np.float32), train_labels, epochs=QAT_EPOCHS, batch_size=batch_size,
                  verbose=0, callbacks=[qat.RecalibrateRanges(calibration)])
    qat.calibrate(qat_model, calibration)
    qat_bytes = qat.qat_to_tflite(qat_model, calibration)
    return {
        "float_change": float(np.max(np.abs(float_before - float_probs))),
        "float_top1": top1(float_probs, held_out_labels),
        "ptq_top1": top1(tflite_probabilities(ptq_bytes, held_out, tmp_path), held_out_labels),
        "qat_fake_quant_probs": qat_model.predict(held_out.astype(np.float32), verbose=0),
        "qat_int8_probs": tflite_probabilities(qat_bytes, held_out, tmp_path),
        "ptq_ops": op_types(ptq_bytes, tmp_path),
        "qat_ops": op_types(qat_bytes, tmp_path),
    }


def test_qat_recovers_half_of_the_ptq_loss(trained: dict, digits) -> None:
    labels = digits[3]
    assert trained["float_change"] < 1e-4  # the imbalance is function-preserving in float
    ptq_drop = trained["float_top1"] - trained["ptq_top1"]
    qat_top1 = top1(trained["qat_int8_probs"], labels)
    recovered = (qat_top1 - trained["ptq_top1"]) / ptq_drop
    print(f"float {trained['float_top1']:.4f}  ptq int8 {trained['ptq_top1']:.4f}  qat int8 {qat_top1:.4f}  "
          f"recovered {recovered:.2f}")
    assert 100 * ptq_drop > MIN_PTQ_DROP_POINTS
    assert 100 * (qat_top1 - trained["ptq_top1"]) >= MIN_QAT_GAIN_POINTS
    assert recovered >= MIN_RECOVERED_FRACTION


def test_qat_model_has_the_ptq_op_types(trained: dict) -> None:
    assert trained["qat_ops"] == trained["ptq_ops"]
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(trained["qat_ops"])


def test_fake_quant_outputs_match_the_int8_model(trained: dict) -> None:
    fake_quant, int8 = trained["qat_fake_quant_probs"], trained["qat_int8_probs"]
    per_image_max = np.abs(fake_quant - int8).max(axis=1)
    # Measured: mean |Δprob| 0.0016, 99th percentile of the per-image max 0.086 (worst image 0.28, a near-tie where
    # one rounding step flips a ReLU), 99.6 % top-1 agreement. The residue is int32 bias and requantisation rounding.
    assert np.mean(np.abs(fake_quant - int8)) < 0.005
    assert np.percentile(per_image_max, 99) < 0.15
    assert np.mean(fake_quant.argmax(axis=1) == int8.argmax(axis=1)) >= 0.98


def test_inference_graph_folds_batchnorm_and_keeps_outputs(tmp_path: Path) -> None:
    from edgecnn import models

    keras.utils.set_random_seed(1)
    model = models.create("tiny_cnn", num_classes=3, image_size=16, dropout=0.0)
    rng = np.random.default_rng(0)
    for layer in model.get_layer("backbone").layers:
        if isinstance(layer, keras.layers.BatchNormalization):  # non-trivial statistics, so folding is exercised
            channels = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, channels), rng.normal(0, 1, channels),
                               rng.normal(0, 1, channels), rng.uniform(0.5, 2, channels)])
    images = rng.integers(0, 256, (4, 16, 16, 3)).astype(np.float32)
    graph = qat.inference_graph(model)
    assert [layer.name for layer in graph.layers] == [
        "image", "normalise", "conv0", "conv0_relu", "pool0", "conv1", "conv1_relu", "pool1", "avg_pool",
        "predictions", "predictions_softmax",
    ]
    np.testing.assert_allclose(graph.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)

    qat_model = qat.prepare_qat(model, images)
    quantised = [layer.name for layer in qat_model.layers if isinstance(layer, qat.ActivationQuantizer)]
    # Not after conv0/conv1 (their ReLU6 is fused) nor after max-pooling (it keeps its input's scale).
    assert quantised == ["normalise_quant", "conv0_relu_quant", "conv1_relu_quant", "avg_pool_quant",
                         "predictions_quant", "predictions_softmax_quant"]
    assert [type(qat_model.get_layer(name)) for name in ("conv0", "predictions")] == [qat.QATConv2D, qat.QATDense]
    qat_model.save(tmp_path / "qat.keras")  # a QAT phase can checkpoint and resume like any other run
    reloaded = keras.saving.load_model(tmp_path / "qat.keras", compile=False)
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), qat_model.predict(images, verbose=0))
    stripped = qat.strip_qat(qat_model)
    np.testing.assert_allclose(stripped.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def test_prepare_qat_rejects_depthwise_convolutions() -> None:
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.DepthwiseConv2D(3, name="dw")(inputs)
    with pytest.raises(ValueError, match=r"unsupported layers \['dw'\]"):
        qat.prepare_qat(keras.Model(inputs, outputs))

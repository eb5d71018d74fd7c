"""Quantisation-aware training: BN folding, quantiser placement, int8 recovery over PTQ, parity with the int8 model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecnn.export.backend import require_tensorflow_backend

require_tensorflow_backend()  # before Keras is imported, whatever KERAS_BACKEND says

import keras  # noqa: E402

from edgecnn.export.tflite import qat_to_tflite  # noqa: E402
from edgecnn.quant.emulation import inference_graph, prepare_qat, strip_qat  # noqa: E402
from edgecnn.quant.graph import leaf_layers, producers  # noqa: E402
from edgecnn.quant.layers import (  # noqa: E402
    ActivationQuantizer,
    QATConv2D,
    QATDense,
    QATDepthwiseConv2D,
    QATHardSwish,
    QATRescaling,
)
from edgecnn.train.qat import fine_tune  # noqa: E402

IMAGE_SIZE = 8  # the digits' native resolution: training and LiteRT evaluation take seconds
CALIBRATION_IMAGES = 200
# Scaling one first-layer channel up by 200 (and the next layer's weights for it down by 200) leaves the float model's
# function unchanged but gives the other channels 1/200 of the per-tensor int8 activation range, about one int8 step
# each: the channel-range imbalance that breaks PTQ of networks trained without BN (Nagel et al. 2019, "Data-free
# quantization"). A float fine-tune does not see the rounding; QAT trains against it.
IMBALANCE = 200.0
QAT_EPOCHS = 20
QAT_LEARNING_RATE = 1e-3  # Adam, cosine-decayed to 0 over the QAT epochs
# Chosen on the 450 validation digits, never on the 450 test digits the assertion reads (deterministic on CPU):
# imbalance 50, 100, 200 × Adam at a constant 5e-4…2e-3 for 10/20/30 epochs, then (100, 200) cosine-decayed from
# 1e-3/2e-3 over 20/30 epochs. At 50 (PTQ −4.7 points) QAT recovered at most 0.57 and the control up to 0.90.
# Constant rates swing by ±0.3 of recovered fraction from one epoch to the next; cosine decay settles. Best:
# 200 × 1e-3 cosine × 20 epochs (0.76; the control, the same fine-tune in float then PTQ, 0.14) tied with
# 100 × 2e-3 cosine × 20 (0.76, control 0.66), broken towards the case where QAT itself is what helps. Neighbours of
# the choice, checked after it was made, all on validation: 15 epochs 0.80, 25 epochs 0.81, 30 epochs 0.74, 5e-4 ×
# 20 or 30 epochs 0.79 / 0.81 (controls 0.07–0.46); 2e-3 diverges (−0.34).
# Validation: float 93.78 %, PTQ int8 51.33 %, QAT int8 83.56 % (recovered 0.76), control 57.33 % (0.14).
# Test (asserted): float 95.33 %, PTQ int8 54.67 %, QAT int8 83.56 % (recovered 0.71: 130 of the 183 images PTQ
# loses), control 57.56 % (0.07). The bounds are the issue's: PTQ loses over 1 point, QAT wins back at least half of
# it (here 38 images above that bar).
MIN_PTQ_DROP_POINTS = 1.0
MIN_RECOVERED_FRACTION = 0.5
MOBILENET_IMAGE_SIZE = 32  # the smallest input keras.applications' MobileNetV2 accepts
MOBILENET_EPOCHS = 4
MOBILENET_CHECK_IMAGES = 300
# One QAT epoch of MobileNetV3-Small (width 0.35, 32 px) from BN-calibrated random weights: 28 s on 2 shared cores.
# Measured on the 150 validation digits, alone: fake-quant top-1 58.0 %, int8 60.0 %, agreement 0.873, mean |Δp|
# 0.022, 10 classes predicted; inside the whole suite (same seeds, other process state): int8 32.7 %, agreement
# 0.787, mean |Δp| 0.042, 9 classes. So the bounds sit under both, well above a model that learnt nothing (top-1
# 0.1) or collapsed (one class). Every quantiser has the converter's scale and zero point and the first block matches
# the int8 tensors to 0.002 steps; the residue is requantisation rounding, which the deeper blocks of a barely
# trained network amplify (mean 0.1 steps after block 2, 1–3 steps after block 5).
# At 1e-2 the model collapses to one class (agreement 1.0, which the class-count check refuses).
V3_TRAIN_IMAGES = 1000
V3_LEARNING_RATE = 3e-3
V3_CHECK_IMAGES = 150
V3_MIN_AGREEMENT = 0.7
V3_MAX_MEAN_DIFF = 0.06
V3_MIN_TOP1 = 0.25

@pytest.fixture(scope="module")
def digits():
    """(train images, train labels, test images, test labels) of scikit-learn's digits at 8 px.

    The validation split (`seed=0`, 450 digits) is where the QAT scenario and schedule were chosen; it is not read here.
    """
    pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn")
    from edgecnn.data import load_splits

    data = load_splits(source="builtin", path="digits", image_size=IMAGE_SIZE, val_fraction=0.25,
                       test_fraction=0.25, seed=0)
    return data.train.images, data.train.labels, data.test.images, data.test.labels


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
    """A converged float model, its PTQ int8 model, a QAT fine-tune of it and its int8 model, on the test digits."""
    from edgecnn.export.tflite import convert

    train_images, train_labels, test_images, test_labels = digits
    tmp_path = tmp_path_factory.mktemp("qat")
    calibration = train_images[:CALIBRATION_IMAGES]
    keras.utils.set_random_seed(0)
    model = small_cnn(num_classes=10)
    epochs, batch_size = 50, 32
    steps = epochs * int(np.ceil(len(train_images) / batch_size))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.01, steps)),
                  loss="sparse_categorical_crossentropy")
    model.fit(train_images.astype(np.float32), train_labels, epochs=epochs, batch_size=batch_size, verbose=0)
    float_before = model.predict(test_images.astype(np.float32), verbose=0)
    imbalance_channel(model, IMBALANCE)
    float_probs = model.predict(test_images.astype(np.float32), verbose=0)
    ptq_bytes = convert(model, "int8", calibration)

    keras.utils.set_random_seed(0)
    qat_steps = QAT_EPOCHS * int(np.ceil(len(train_images) / batch_size))
    qat_model = fine_tune(model, calibration, train_images.astype(np.float32), QAT_EPOCHS,
                              keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(QAT_LEARNING_RATE,
                                                                                           qat_steps)),
                              "sparse_categorical_crossentropy", y=train_labels, batch_size=batch_size)
    qat_bytes = qat_to_tflite(qat_model, calibration)
    return {
        "float_change": float(np.max(np.abs(float_before - float_probs))),
        "float_top1": top1(float_probs, test_labels),
        "ptq_top1": top1(tflite_probabilities(ptq_bytes, test_images, tmp_path), test_labels),
        "qat_fake_quant_probs": qat_model.predict(test_images.astype(np.float32), verbose=0),
        "qat_int8_probs": tflite_probabilities(qat_bytes, test_images, tmp_path),
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
    assert recovered >= MIN_RECOVERED_FRACTION


def test_qat_model_has_the_ptq_op_types(trained: dict) -> None:
    assert trained["qat_ops"] == trained["ptq_ops"]
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(trained["qat_ops"])


def test_fake_quant_outputs_match_the_int8_model(trained: dict) -> None:
    fake_quant, int8 = trained["qat_fake_quant_probs"], trained["qat_int8_probs"]
    per_image_max = np.abs(fake_quant - int8).max(axis=1)
    # Measured on the 450 test digits: mean |Δprob| 0.0007, 99th percentile of the per-image max 0.045 (worst image
    # 0.082), 99.1 % top-1 agreement (4 images). The residue is int32 bias and requantisation rounding, which the
    # imbalanced conv0 output (most channels about one int8 step wide) turns into whole-step flips now and then.
    assert np.mean(np.abs(fake_quant - int8)) < 0.002
    assert np.percentile(per_image_max, 99) < 0.08
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
    graph = inference_graph(model)
    assert [layer.name for layer in graph.layers] == [
        "image", "normalise", "conv0", "conv0_relu", "pool0", "conv1", "conv1_relu", "pool1", "avg_pool",
        "predictions", "predictions_softmax",
    ]
    np.testing.assert_allclose(graph.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)

    qat_model = prepare_qat(model, images)
    quantised = [layer.name for layer in qat_model.layers if isinstance(layer, ActivationQuantizer)]
    # Not after conv0/conv1 (their ReLU6 is fused) nor after max-pooling (it keeps its input's scale).
    assert quantised == ["normalise_quant", "conv0_relu_quant", "conv1_relu_quant", "avg_pool_quant",
                         "predictions_quant", "predictions_softmax_quant"]
    assert [type(qat_model.get_layer(name)) for name in ("conv0", "predictions")] == [QATConv2D, QATDense]
    qat_model.save(tmp_path / "qat.keras")  # a QAT phase can checkpoint and resume like any other run
    reloaded = keras.saving.load_model(tmp_path / "qat.keras", compile=False)
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), qat_model.predict(images, verbose=0))
    stripped = strip_qat(qat_model)
    np.testing.assert_allclose(stripped.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def test_prepare_qat_rejects_separable_convolutions() -> None:
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.SeparableConv2D(4, 3, name="separable")(inputs)
    with pytest.raises(ValueError, match=r"unsupported layers \['separable'\]"):
        prepare_qat(keras.Model(inputs, outputs))


def test_prepare_qat_names_the_keras_ops_it_cannot_emulate() -> None:
    inputs = keras.Input((8, 8, 3))
    outputs = keras.ops.exp(keras.layers.Conv2D(4, 3, name="conv")(inputs))
    with pytest.raises(ValueError, match=r"QAT supports the keras.ops operations Add, .*; net has keras.ops "
                                         r"operations exp\w* \(Exp\)"):
        prepare_qat(keras.Model(inputs, outputs, name="net"))


def inverted_residual(image_size: int) -> keras.Model:
    """Every pattern of a MobileNetV2 block: offset rescaling, BN folded into conv and depthwise (multiplier 2),
    ReLU6 fused, zero-padding before a strided depthwise, a linear projection, a residual ADD, pooling, softmax."""
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalise")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(x)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    x = keras.layers.ReLU(6.0, name="conv_relu")(x)
    x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.ReLU(6.0, name="dw_relu")(x)
    x = keras.layers.Conv2D(16, 1, use_bias=False, name="project")(x)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    branch = keras.layers.Conv2D(16, 1, name="branch")(x)
    x = keras.layers.Add(name="add")([x, branch])
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="block")


def randomise_batchnorm(model: keras.Model, seed: int) -> None:
    """Non-trivial BN statistics, so that folding is exercised."""
    rng = np.random.default_rng(seed)
    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, channels), rng.normal(0, 1, channels),
                               rng.normal(0, 1, channels), rng.uniform(0.5, 2, channels)])


def test_depthwise_block_folds_quantises_and_round_trips(tmp_path: Path) -> None:
    keras.utils.set_random_seed(2)
    model = inverted_residual(image_size=8)
    randomise_batchnorm(model, seed=0)
    images = np.random.default_rng(1).integers(0, 256, (16, 8, 8, 3)).astype(np.float32)
    graph = inference_graph(model)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in graph.layers)
    np.testing.assert_allclose(graph.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)

    qat_model = prepare_qat(model, images)
    quantisers = {layer.name: layer.joins for layer in qat_model.layers if isinstance(layer, ActivationQuantizer)}
    # No quantiser after conv/dw (ReLU6 fused), after the padding (scale kept) nor after "project" alone: it feeds
    # the ADD *and* "branch". "branch" only feeds the ADD, so it shares the ADD's range.
    assert quantisers == {
        "normalise_quant": None, "conv_relu_quant": None, "dw_relu_quant": None, "project_quant": None,
        "branch_quant": "add_quant", "add_quant": None, "avg_pool_quant": None, "predictions_quant": None,
        "predictions_softmax_quant": None,
    }
    assert [type(qat_model.get_layer(name)) for name in ("normalise", "conv", "dw", "predictions")] == [
        QATRescaling, QATConv2D, QATDepthwiseConv2D, QATDense]

    # The depthwise kernel (3, 3, 8, 2) is quantised per output channel c·2 + m: 255 levels of max|w| / 127 each.
    depthwise = qat_model.get_layer("dw")
    raw = keras.ops.convert_to_numpy(depthwise._kernel).reshape(9, 16)
    step = np.abs(raw).max(axis=0) / 127
    expected = np.clip(np.round(raw / step), -127, 127) * step
    np.testing.assert_allclose(keras.ops.convert_to_numpy(depthwise.kernel).reshape(9, 16), expected, atol=1e-6)

    qat_model.save(tmp_path / "qat.keras")
    reloaded = keras.saving.load_model(tmp_path / "qat.keras", compile=False)
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), qat_model.predict(images, verbose=0))
    stripped = strip_qat(qat_model)
    assert type(stripped.get_layer("normalise")) is keras.layers.Rescaling
    np.testing.assert_allclose(stripped.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def tflite_activation_params(model_bytes: bytes) -> dict[tuple[str, str], tuple[float, int]]:
    """(Keras layer, TFLite op) → (scale, zero point) of the op's int8 output, for every op of the model."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    tensors = {tensor["index"]: tensor for tensor in interpreter.get_tensor_details()}
    found = {}
    for op in interpreter._get_ops_details():
        for index in op["outputs"]:
            name, (scale, zero_point) = tensors[index]["name"], tensors[index]["quantization"]
            parts = name.split(";")[0].split("/")  # e.g. block_1/conv_relu_1/Relu6;block_1/conv_1/BiasAdd;…
            layer = parts[1].removesuffix("_1") if len(parts) > 2 else op["op_name"]
            found[(layer, op["op_name"])] = (scale, zero_point)
    return found


# Quantiser → the TFLite op output it stands for (the op names and fusions TF 2.21 produces).
TFLITE_TENSOR_OF = {
    "normalise": ("normalise", "MUL"), "normalise_quant": ("normalise", "ADD"),
    "conv_relu_quant": ("conv_relu", "CONV_2D"), "dw_relu_quant": ("dw_relu", "DEPTHWISE_CONV_2D"),
    "project_quant": ("project", "CONV_2D"), "branch_quant": ("branch", "CONV_2D"), "add_quant": ("add", "ADD"),
    "avg_pool_quant": ("avg_pool", "MEAN"), "predictions_quant": ("predictions", "FULLY_CONNECTED"),
    "predictions_softmax_quant": ("SOFTMAX", "SOFTMAX"),
}


def prepared_block(build, image_size: int, seed: int) -> tuple[keras.Model, np.ndarray, keras.Model]:
    """A block built by `build(image_size)` with randomised BN statistics, 32 random images, its calibrated QAT copy."""
    keras.utils.set_random_seed(seed)
    model = build(image_size)
    randomise_batchnorm(model, seed=image_size)
    images = np.random.default_rng(seed + 1).integers(0, 256, (32, image_size, image_size, 3)).astype(np.float32)
    return model, images, prepare_qat(model, images)


@pytest.mark.parametrize("image_size", [8, 2], ids=["4x4-add", "1x1-add"])
def test_every_quantiser_has_the_converters_scale_and_zero_point(image_size: int) -> None:
    model, images, qat_model = prepared_block(inverted_residual, image_size, seed=3)
    converted = tflite_activation_params(qat_to_tflite(qat_model, images))
    for name, tensor in TFLITE_TENSOR_OF.items():
        layer = qat_model.get_layer(name)
        low, high = float(layer.range_min.numpy()), float(layer.range_max.numpy())
        scale = (high - low) / 255
        assert converted[tensor][0] == pytest.approx(scale, rel=1e-5), name
        assert converted[tensor][1] == round(-128 - low / scale), name


def squeeze_excite(image_size: int) -> keras.Model:
    """MobileNetV3's patterns as keras.applications builds them: hard-swish, and a squeeze-excite gate whose
    hard-sigmoid is `keras.ops` arithmetic (`ReLU(6)(x + 3.0) * (1 / 6)`), which the graph records as Add and
    Multiply operations that are not layers."""
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalise")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(x)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    x = keras.layers.Activation("hard_swish", name="conv_hswish")(x)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name="se_pool")(x)
    gate = keras.layers.Conv2D(4, 1, name="se_reduce")(gate)
    gate = keras.layers.ReLU(name="se_relu")(gate)
    gate = keras.layers.Conv2D(8, 1, name="se_expand")(gate)
    gate = keras.layers.ReLU(6.0, name="se_relu6")(gate + 3.0) * (1.0 / 6.0)
    x = keras.layers.Multiply(name="se_mul")([x, gate])
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="se_block")


def qat_grids(qat_model: keras.Model) -> dict[tuple[str, str], tuple[float, int]]:
    """(layer, range) → (scale, zero point) of every calibrated 8-bit grid of a QAT model."""
    grids = {}
    for layer in qat_model.layers:
        if isinstance(layer, ActivationQuantizer | QATRescaling | QATHardSwish):
            for prefix in ("range", "gate_range") if isinstance(layer, QATHardSwish) else ("range",):
                low = float(getattr(layer, f"{prefix}_min").numpy())
                scale = (float(getattr(layer, f"{prefix}_max").numpy()) - low) / 255
                grids[layer.name, prefix] = (scale, round(-128 - low / scale))
    return grids


def missing_grids(qat_model: keras.Model, model_bytes: bytes) -> list[str]:
    """The QAT grids that no int8 tensor of the converted model has (scale within 1e-5, same zero point)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    tensors = {tensor["index"]: tensor for tensor in interpreter.get_tensor_details()}
    converted = {tensors[index]["quantization"] for op in interpreter._get_ops_details() for index in op["outputs"]}
    return [
        f"{name}/{prefix} {grid}" for (name, prefix), grid in qat_grids(qat_model).items()
        if not any(abs(scale - grid[0]) <= 1e-5 * grid[0] and zero_point == grid[1] for scale, zero_point in converted)
    ]


@pytest.mark.parametrize("image_size", [4, 1], ids=["broadcast-gate", "1x1-gate"])
def test_squeeze_excite_ops_are_quantised_where_the_int8_graph_is(image_size: int) -> None:
    model, images, qat_model = prepared_block(squeeze_excite, image_size, seed=5)
    add_op, multiply_op = producers(model.get_layer("se_relu6"))[0], producers(model.get_layer("se_mul"))[1]
    assert (type(add_op).__name__, type(multiply_op).__name__) == ("Add", "Multiply")
    quantisers = {layer.name: layer.joins for layer in qat_model.layers if isinstance(layer, ActivationQuantizer)}
    # No quantiser after se_reduce (ReLU fused), se_expand (the + 3 is folded into its bias) nor the + 3 (ReLU6
    # fused into it). The gate's · 1/6 joins se_mul's range when it has the features' shape (1×1), as the converter
    # does; broadcast over a 4×4 map it keeps its own.
    assert quantisers == {
        "normalise_quant": None, "conv_quant": None, "conv_hswish_quant": None, "se_pool_quant": None,
        "se_relu_quant": None, "se_relu6_quant": None,
        f"{multiply_op.name}_quant": "se_mul_quant" if image_size == 1 else None,
        "se_mul_quant": None, "avg_pool_quant": None, "predictions_quant": None, "predictions_softmax_quant": None,
    }
    assert type(qat_model.get_layer("conv_hswish")) is QATHardSwish
    np.testing.assert_allclose(strip_qat(qat_model).predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=1e-5)
    assert missing_grids(qat_model, qat_to_tflite(qat_model, images)) == []


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """MobileNetV2 (width 0.35, 32 px) trained briefly on the digits, its PTQ model, a 1-epoch QAT fine-tune."""
    pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn")
    from edgecnn import models
    from edgecnn.data import load_splits
    from edgecnn.export.tflite import convert

    data = load_splits(source="builtin", path="digits", image_size=MOBILENET_IMAGE_SIZE, val_fraction=0.25,
                       test_fraction=0.1, seed=0)
    train_images, train_labels = data.train.images.astype(np.float32), data.train.labels
    calibration = data.train.images[:CALIBRATION_IMAGES]
    tmp_path = tmp_path_factory.mktemp("mobilenet")
    keras.utils.set_random_seed(0)
    model = models.create("mobilenet_v2", num_classes=10, image_size=MOBILENET_IMAGE_SIZE, width=0.35, dropout=0.0)
    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9  # as recipes train: 0.999 lags far behind on a few epochs
    model.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy")
    model.fit(train_images, train_labels, epochs=MOBILENET_EPOCHS, batch_size=32, verbose=0)
    keras.utils.set_random_seed(0)
    qat_model = fine_tune(model, calibration, train_images, 1, keras.optimizers.Adam(1e-4),
                              "sparse_categorical_crossentropy", y=train_labels, batch_size=32)
    check_images = data.val.images[:MOBILENET_CHECK_IMAGES]
    qat_bytes = qat_to_tflite(qat_model, calibration)
    return {
        "labels": data.val.labels[:MOBILENET_CHECK_IMAGES],
        "float_probs": model.predict(check_images.astype(np.float32), verbose=0),
        "fake_quant_probs": qat_model.predict(check_images.astype(np.float32), verbose=0),
        "int8_probs": tflite_probabilities(qat_bytes, check_images, tmp_path),
        "qat_bytes": qat_bytes,
        "ptq_ops": op_types(convert(model, "int8", calibration), tmp_path),
        "qat_ops": op_types(qat_bytes, tmp_path),
    }


@pytest.mark.slow
def test_mobilenet_v2_qat_converts_to_the_ptq_int8_graph(mobilenet: dict) -> None:
    from ai_edge_litert.interpreter import Interpreter

    assert mobilenet["qat_ops"] == mobilenet["ptq_ops"]
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"} <= set(mobilenet["qat_ops"])
    interpreter = Interpreter(model_content=mobilenet["qat_bytes"])
    # Full integer: uint8 in and out, int8 activations and weights, int32 biases, no float tensor anywhere.
    assert {tensor["dtype"] for tensor in interpreter.get_tensor_details()} == {np.uint8, np.int8, np.int32}


@pytest.mark.slow
def test_mobilenet_v2_fake_quant_predictions_match_the_int8_model(mobilenet: dict) -> None:
    fake_quant, int8, labels = mobilenet["fake_quant_probs"], mobilenet["int8_probs"], mobilenet["labels"]
    agreement = np.mean(fake_quant.argmax(axis=1) == int8.argmax(axis=1))
    mean_diff = np.mean(np.abs(fake_quant - int8))
    print(f"float top-1 {top1(mobilenet['float_probs'], labels):.3f}  fake-quant {top1(fake_quant, labels):.3f}  "
          f"int8 {top1(int8, labels):.3f}  agreement {agreement:.3f}  mean |Δp| {mean_diff:.4f}")
    assert top1(int8, labels) > 0.5  # a model that has learnt something: agreement between guesses proves nothing
    assert agreement >= 0.95
    assert mean_diff < 0.01


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "mobilenet_v3_small_minimalistic", "mobilenet_v3_small_cifar"])
def test_prepare_qat_accepts_the_zoos_mobilenet_v3_small_models(name: str, tmp_path: Path) -> None:
    from edgecnn import models

    keras.utils.set_random_seed(0)
    model = models.create(name, num_classes=3, image_size=32, width=0.35, dropout=0.0)
    images = np.random.default_rng(7).integers(0, 256, (8, 32, 32, 3)).astype(np.float32)
    qat_model = prepare_qat(model, images)
    assert any(isinstance(layer, ActivationQuantizer) for layer in qat_model.layers)
    np.testing.assert_allclose(strip_qat(qat_model).predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=1e-5)
    if name == "mobilenet_v3_small":  # keras.ops operations and QATHardSwish survive a QAT checkpoint
        qat_model.save(tmp_path / "qat.keras")
        reloaded = keras.saving.load_model(tmp_path / "qat.keras", compile=False)
        np.testing.assert_array_equal(reloaded.predict(images, verbose=0), qat_model.predict(images, verbose=0))


@pytest.mark.slow
def test_mobilenet_v3_small_qat_converts_and_matches_its_int8_model(tmp_path: Path) -> None:
    """The zoo's MobileNetV3-Small (keras.ops hard-sigmoids, hard-swish, squeeze-excite): 1 QAT epoch, int8 TFLite."""
    pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn")
    from edgecnn import models
    from edgecnn.data import load_splits

    data = load_splits(source="builtin", path="digits", image_size=MOBILENET_IMAGE_SIZE, val_fraction=0.25,
                       test_fraction=0.1, seed=0)
    train_images = data.train.images[:V3_TRAIN_IMAGES].astype(np.float32)
    calibration = data.train.images[:CALIBRATION_IMAGES // 2]
    check_images, labels = data.val.images[:V3_CHECK_IMAGES], data.val.labels[:V3_CHECK_IMAGES]
    keras.utils.set_random_seed(0)
    model = models.create("mobilenet_v3_small", num_classes=10, image_size=MOBILENET_IMAGE_SIZE, width=0.35,
                          dropout=0.0)
    # BN statistics of the digits instead of a float pre-training (one training-mode call at momentum 0): the
    # random network then has O(1) activations at every depth, and one QAT epoch teaches it something.
    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(train_images[:64], training=True)
    keras.utils.set_random_seed(0)
    qat_model = fine_tune(model, calibration, train_images, 1, keras.optimizers.Adam(V3_LEARNING_RATE),
                          "sparse_categorical_crossentropy", y=data.train.labels[:V3_TRAIN_IMAGES], batch_size=32)
    assert sum(isinstance(layer, QATHardSwish) for layer in qat_model.layers) == 19
    qat_bytes = qat_to_tflite(qat_model, calibration)
    assert missing_grids(qat_model, qat_bytes) == []  # every quantiser has the converter's scale and zero point

    fake_quant = qat_model.predict(check_images.astype(np.float32), verbose=0)
    int8 = tflite_probabilities(qat_bytes, check_images, tmp_path)
    agreement = np.mean(fake_quant.argmax(axis=1) == int8.argmax(axis=1))
    mean_diff = np.mean(np.abs(fake_quant - int8))
    print(f"fake-quant top-1 {top1(fake_quant, labels):.3f}  int8 {top1(int8, labels):.3f}  agreement "
          f"{agreement:.3f}  mean |Δp| {mean_diff:.4f}  classes predicted {np.unique(int8.argmax(axis=1)).size}")
    # A model that has learnt something and predicts most classes: agreement between constant guesses proves nothing
    # (a learning rate of 1e-2 collapses it to one class).
    assert top1(int8, labels) > V3_MIN_TOP1 and np.unique(int8.argmax(axis=1)).size >= 8
    assert agreement >= V3_MIN_AGREEMENT
    assert mean_diff < V3_MAX_MEAN_DIFF


@pytest.mark.slow
def test_recipe_qat_run_is_exported_to_int8_tflite_from_the_qat_model(tmp_path: Path) -> None:
    import json

    from edgecnn.cli import main

    pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: digits-qat\n"
        "data: {source: builtin, path: digits, image_size: 16, max_per_class: 60, val_fraction: 0.25, "
        "test_fraction: 0.1}\n"
        "model: {name: tiny_cnn, dropout: 0.0}\n"
        "train: {epochs: 4, batch_size: 16, learning_rate: 0.01}\n"
        "qat: {enabled: true, epochs: 1}\n"
    )
    runs, bundles = tmp_path / "runs", tmp_path / "bundles"
    assert main(["train", str(recipe), "--out", str(runs)]) == 0
    run = runs / "digits-qat"
    qat_metrics = json.loads((run / "metrics.json").read_text())["qat"]
    assert (qat_metrics["model_file"], qat_metrics["epochs"], qat_metrics["learning_rate"]) == (
        "model_qat.keras", 1, 1e-4)
    assert 0.0 < qat_metrics["val_top1"] <= 1.0 and 0.0 < qat_metrics["float_val_top1"] <= 1.0
    qat_model = keras.saving.load_model(run / "model_qat.keras", compile=False)
    assert any(isinstance(layer, ActivationQuantizer) for layer in qat_model.layers)

    assert main(["export", str(run), "--out", str(bundles)]) == 0  # the recipe's targets: float32 and int8
    int8 = json.loads((bundles / "digits-qat-tflite-int8" / "bundle.json").read_text())
    float32 = json.loads((bundles / "digits-qat-tflite-float32" / "bundle.json").read_text())
    assert (int8["source"]["qat"], int8["source"]["model_file"]) == (True, "model_qat.keras")
    assert (float32["source"]["qat"], float32["source"]["model_file"]) == (False, "model.keras")
    assert int8["checks"]["parity"]["passed"] and float32["checks"]["parity"]["passed"]
    # Parity of the int8 bundle is against the fake-quantised model it was fine-tuned as.
    assert int8["checks"]["parity"]["keras_top1"] == pytest.approx(qat_metrics["val_top1"])

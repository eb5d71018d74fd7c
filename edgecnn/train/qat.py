"""Quantisation-aware fine-tuning for Keras 3 functional classifiers (TF-MOT's `quantize_model` rejects Keras 3).

The QAT model emulates, in float, exactly the int8 graph the TFLite converter builds from the float model:

1. `inference_graph` flattens nested models and folds each BatchNormalization into the convolution before it, as the
   converter does. Folding (rather than keeping BN and quantising after it) makes the weights that are fake-quantised
   the weights that are deployed; BN statistics are frozen from then on, which is what a short fine-tune wants anyway.
   A Dense with a softmax is split into Dense + Softmax, since TFLite quantises the logits and the probabilities apart.
2. `prepare_qat` swaps Conv2D/Dense for subclasses that fake-quantise their kernel like the converter (symmetric
   int8, narrow range, per output channel: TF 2.21 quantises FULLY_CONNECTED per channel too) and inserts an
   `ActivationQuantizer` where TFLite keeps a quantised tensor: after every op, except after an op whose only
   consumer is a fusable ReLU/ReLU6 (fused into the conv/FC) and after scale-preserving ops (pooling, reshape).
   Gradients pass straight through the rounding (`keras.quantizers.fake_quant_with_min_max_vars`).
3. `calibrate` sets each activation range to the min/max over the calibration images, as the converter's calibrator
   does (range widened to include 0). Ranges are constant inside each epoch (stateless, jit-friendly training) and
   `RecalibrateRanges` refreshes them between epochs, the role of TF-MOT's moving-average observers.
4. `qat_to_tflite` strips the quantisers (same layers, same names, fine-tuned weights) and converts with the
   existing full-int8 PTQ path on the same calibration images: the op set is the PTQ one by construction, and the
   converter re-derives the ranges the QAT model trained against. The graph is not exported with FakeQuant ops
   (the converter's own QAT mode): that would carry learned ranges over, but gives up the op-set guarantee.
Training works on any Keras backend (only `keras.ops` / `keras.quantizers`); conversion needs TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

# Ops whose int8 output reuses the input's quantisation parameters, so no quantiser follows them.
SCALE_PRESERVING = (
    keras.layers.MaxPooling2D, keras.layers.Dropout, keras.layers.Flatten, keras.layers.Reshape,
    keras.layers.Identity, keras.layers.InputLayer,
)
FUSABLE_ACTIVATIONS = {"relu", "relu6"}
SOFTMAX_RANGE = (0.0, 255.0 / 256.0)  # TFLite's fixed int8 softmax output: scale 1/256, zero point -128


@keras.saving.register_keras_serializable(package="edgecnn")
class ActivationQuantizer(keras.layers.Layer):
    """Fake-quantises activations to 8 bits over a calibrated [min, max] range (straight-through gradients)."""

    def __init__(self, fixed_range: tuple[float, float] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.fixed_range = tuple(fixed_range) if fixed_range is not None else None
        self.observing = False

    def build(self, input_shape) -> None:
        low, high = self.fixed_range or (0.0, 0.0)
        self.range_min = self.add_weight(name="range_min", shape=(), initializer=keras.initializers.Constant(low),
                                         trainable=False)
        self.range_max = self.add_weight(name="range_max", shape=(), initializer=keras.initializers.Constant(high),
                                         trainable=False)

    def call(self, inputs):
        if self.observing and self.fixed_range is None:
            self.range_min.assign(ops.minimum(self.range_min, ops.min(inputs)))
            self.range_max.assign(ops.maximum(self.range_max, ops.max(inputs)))
            return inputs
        return keras.quantizers.fake_quant_with_min_max_vars(inputs, self.range_min, self.range_max, num_bits=8)

    def get_config(self) -> dict:
        return {**super().get_config(), "fixed_range": self.fixed_range}


def _fake_quant_weights(kernel):
    """Symmetric narrow-range int8 per output channel (the last Keras axis): scale = max|w| / 127."""
    bound = ops.maximum(ops.max(ops.abs(kernel), axis=tuple(range(len(kernel.shape) - 1))), 1e-8)
    return keras.quantizers.fake_quant_with_min_max_vars(kernel, -bound, bound, num_bits=8, narrow_range=True, axis=-1)


@keras.saving.register_keras_serializable(package="edgecnn")
class QATConv2D(keras.layers.Conv2D):
    """Conv2D whose kernel is fake-quantised per output channel, as TFLite's int8 CONV_2D stores it."""

    @property
    def kernel(self):
        return _fake_quant_weights(super().kernel)


@keras.saving.register_keras_serializable(package="edgecnn")
class QATDense(keras.layers.Dense):
    """Dense whose kernel is fake-quantised per output unit, as TFLite's int8 FULLY_CONNECTED stores it."""

    @property
    def kernel(self):
        return _fake_quant_weights(super().kernel)


QAT_LAYERS: dict[type, type] = {keras.layers.Conv2D: QATConv2D, keras.layers.Dense: QATDense}
PLAIN_LAYERS: dict[type, type] = {qat: plain for plain, qat in QAT_LAYERS.items()}
# Weighted layers QAT would leave in float while the converter quantises them: refuse rather than mis-emulate.
UNSUPPORTED = (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, keras.layers.Conv2DTranspose)


def inference_graph(model: keras.Model) -> keras.Model:
    """The float graph TFLite runs: nested models inlined, BN folded into its conv, softmax split off Dense."""
    flat = _flatten(model)
    consumers = _consumers(flat)
    bn_of_conv = {
        producer.name: layer for layer in flat.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        and isinstance(producer := _producer(layer), keras.layers.Conv2D)
        and len(consumers[producer.name]) == 1
    }
    folded_bns = {bn.name for bn in bn_of_conv.values()}
    softmax_dense = {
        layer.name for layer in flat.layers
        if isinstance(layer, keras.layers.Dense) and layer.get_config()["activation"] == "softmax"
    }

    def clone_function(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if layer.name in bn_of_conv:
            config["use_bias"] = True
        if layer.name in softmax_dense:
            config["activation"] = "linear"
        return layer.__class__.from_config(config)

    def call_function(layer: keras.layers.Layer, *args, **kwargs):
        if layer.name in folded_bns:
            return args[0]
        outputs = layer(*args, **kwargs)
        if layer.name in softmax_dense:
            outputs = keras.layers.Softmax(name=f"{layer.name}_softmax")(outputs)
        return outputs

    graph = keras.models.clone_model(flat, clone_function=clone_function, call_function=call_function)
    for layer in graph.layers:
        if layer.name in bn_of_conv:
            layer.set_weights(_fold(flat.get_layer(layer.name), bn_of_conv[layer.name]))
        elif layer.weights:
            layer.set_weights(flat.get_layer(layer.name).get_weights())
    return graph


def prepare_qat(model: keras.Model, calibration_images: np.ndarray | None = None) -> keras.Model:
    """A fake-quantised copy of `model` for fine-tuning; ranges are calibrated if images are given."""
    graph = inference_graph(model)
    unsupported = sorted(layer.name for layer in graph.layers if isinstance(layer, UNSUPPORTED))
    if unsupported:
        raise ValueError(
            f"QAT supports Conv2D and Dense weights; {model.name} has unsupported layers {unsupported}"
        )
    quantised = _quantisation_points(graph)

    def call_function(layer: keras.layers.Layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        if layer.name not in quantised:
            return outputs
        fixed = SOFTMAX_RANGE if isinstance(layer, keras.layers.Softmax) else None
        return ActivationQuantizer(fixed_range=fixed, name=f"{layer.name}_quant")(outputs)

    qat = _clone_with_weights(graph, lambda cls: QAT_LAYERS.get(cls, cls), call_function)
    if calibration_images is not None:
        calibrate(qat, calibration_images)
    return qat


def calibrate(qat_model: keras.Model, calibration_images: np.ndarray, batch_size: int = 64) -> None:
    """Set every activation range to the float min/max over `calibration_images`, as the TFLite calibrator does."""
    quantizers = [layer for layer in qat_model.layers if isinstance(layer, ActivationQuantizer)]
    for quantizer in quantizers:
        if quantizer.fixed_range is None:
            quantizer.range_min.assign(0.0)
            quantizer.range_max.assign(0.0)
        quantizer.observing = True
    try:
        for start in range(0, len(calibration_images), batch_size):
            qat_model(calibration_images[start:start + batch_size].astype(np.float32), training=False)
    finally:
        for quantizer in quantizers:
            quantizer.observing = False


class RecalibrateRanges(keras.callbacks.Callback):
    """Recalibrates activation ranges at each epoch start, so they follow the weights as fine-tuning moves them."""

    def __init__(self, calibration_images: np.ndarray):
        super().__init__()
        self.calibration_images = calibration_images

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        calibrate(self.model, self.calibration_images)


def strip_qat(qat_model: keras.Model) -> keras.Model:
    """The float model with the fine-tuned weights and no quantisers (what the converter gets)."""

    def call_function(layer: keras.layers.Layer, *args, **kwargs):
        return args[0] if isinstance(layer, ActivationQuantizer) else layer(*args, **kwargs)

    return _clone_with_weights(qat_model, lambda cls: PLAIN_LAYERS.get(cls, cls), call_function)


def qat_to_tflite(qat_model: keras.Model, calibration_images: np.ndarray) -> bytes:
    """Full-integer TFLite (uint8 in/out, built-in ops) from a fine-tuned QAT model, through the PTQ converter."""
    from edgecnn.export.tflite import convert

    return convert(strip_qat(qat_model), "int8", calibration_images)


def _flatten(model: keras.Model) -> keras.Model:
    """A copy of a functional model with nested functional models inlined (same layer names and weights)."""

    def call_function(layer: keras.layers.Layer, *args, **kwargs):
        if isinstance(layer, keras.Model):
            return _flatten_into(layer, args[0])
        return layer(*args, **kwargs)

    def _flatten_into(inner: keras.Model, tensor):
        return keras.models.clone_model(inner, input_tensors=tensor, call_function=call_function).outputs[0]

    flat = keras.models.clone_model(model, call_function=call_function)
    weights = {layer.name: layer for layer in _all_layers(model)}
    for layer in flat.layers:
        if layer.weights:
            layer.set_weights(weights[layer.name].get_weights())
    return flat


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found = []
    for layer in model.layers:
        found.extend(_all_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return found


def _clone_with_weights(
    model: keras.Model, swap_class: Callable[[type], type], call_function: Callable,
) -> keras.Model:
    """Clone a flat functional model, rebuilding each layer as `swap_class(type)` and copying weights by name."""
    clone = keras.models.clone_model(
        model,
        clone_function=lambda layer: swap_class(type(layer)).from_config(layer.get_config()),
        call_function=call_function,
    )
    originals = {layer.name: layer for layer in model.layers}
    for layer in clone.layers:
        if layer.name in originals and layer.weights:
            layer.set_weights(originals[layer.name].get_weights())
    return clone


def _producer(layer: keras.layers.Layer) -> keras.layers.Layer:
    (tensor,) = keras.tree.flatten(layer._inbound_nodes[0].input_tensors)
    return tensor._keras_history.operation


def _consumers(model: keras.Model) -> dict[str, list[keras.layers.Layer]]:
    consumers: dict[str, list[keras.layers.Layer]] = {layer.name: [] for layer in model.layers}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in keras.tree.flatten(node.input_tensors):
                consumers[tensor._keras_history.operation.name].append(layer)
    return consumers


def _activation_name(layer: keras.layers.Layer) -> str | None:
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        plain = not config.get("negative_slope") and not config.get("threshold")
        return {None: "relu", 6.0: "relu6"}.get(config.get("max_value")) if plain else None
    if isinstance(layer, keras.layers.Activation):
        return layer.get_config()["activation"]
    return None


def _quantisation_points(graph: keras.Model) -> set[str]:
    """Names of layers whose output TFLite stores as its own int8 tensor."""
    consumers = _consumers(graph)
    points = set()
    for layer in graph.layers:
        if isinstance(layer, SCALE_PRESERVING):
            continue
        after = consumers[layer.name]
        fused = len(after) == 1 and _activation_name(after[0]) in FUSABLE_ACTIVATIONS
        if fused and isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            continue
        points.add(layer.name)
    return points


def _fold(conv: keras.layers.Conv2D, bn: keras.layers.BatchNormalization) -> list[np.ndarray]:
    """Conv kernel and bias with the inference-mode BN folded in: w·γ/σ and (b − μ)·γ/σ + β."""
    weights = conv.get_weights()
    kernel, bias = weights[0], (weights[1] if len(weights) > 1 else np.zeros(weights[0].shape[-1], np.float32))
    bn_weights = dict(zip([w.path.split("/")[-1] for w in bn.weights], bn.get_weights()))
    scale = 1.0 / np.sqrt(bn_weights["moving_variance"] + bn.epsilon)
    if "gamma" in bn_weights:
        scale = scale * bn_weights["gamma"]
    shift = bn_weights.get("beta", 0.0) - bn_weights["moving_mean"] * scale
    return [(kernel * scale).astype(np.float32), (bias * scale + shift).astype(np.float32)]

"""Quantisation-aware fine-tuning for Keras 3 functional classifiers (TF-MOT's `quantize_model` rejects Keras 3).

The QAT model emulates, in float, exactly the int8 graph the TFLite converter builds from the float model:

1. `inference_graph` flattens nested models and folds each BatchNormalization into the convolution before it, as the
   converter does. Folding (rather than keeping BN and quantising after it) makes the weights that are fake-quantised
   the weights that are deployed; BN statistics are frozen from then on, which is what a short fine-tune wants anyway.
   A Dense with a softmax is split into Dense + Softmax, since TFLite quantises the logits and the probabilities apart.
   DepthwiseConv2D gets the same folding (its output channel c·M + m is BN channel c·M + m).
2. `prepare_qat` swaps Conv2D/DepthwiseConv2D/Dense for subclasses that fake-quantise their kernel like the
   converter (symmetric int8, narrow range, per output channel: TF 2.21 quantises FULLY_CONNECTED per channel too,
   and DEPTHWISE_CONV_2D per channel c·M + m of its (1, kh, kw, C·M) kernel) and inserts an `ActivationQuantizer`
   where TFLite keeps a quantised tensor: after every op (ADD and MEAN requantise too), except after an op whose only
   consumer is a ReLU/ReLU6 that TFLite fuses into it (conv, depthwise, FC, ADD) and after scale-preserving ops
   (max-pooling, reshape, zero-padding: PAD keeps its input's scale, or is folded into the convolution after it).
   A Rescaling without offset is folded into the conv after it, and the quantiser after it has the uint8 input's
   grid; with an offset, before a 'same'-padded conv it stays a MUL and an ADD, both requantised (`QATRescaling`
   quantises the MUL), and before a 'valid' conv it is folded whole (no quantiser). Input pixels are not
   fake-quantised: uint8 pixels are exact on the input's grid when the calibration images span 0..255.
   Gradients pass straight through the rounding (`keras.quantizers.fake_quant_with_min_max_vars`).
3. `calibrate` sets each range to the min/max of the float model (fine-tuned weights, nothing fake-quantised) over
   the calibration images, widened to include 0: what the converter's calibrator measures. Two rules of the TF 2.21
   converter, found by comparing tensor by tensor: a tensor whose only consumer is an ADD without a fused ReLU gets
   the union of its own range and the ADD's (`ActivationQuantizer.joins`; Rescaling's MUL likewise), except on a 1×1
   feature map, where the converter squeezes it (RESHAPE) before the ADD. With them every quantiser of MobileNetV2
   has the converter's scale and zero point. Ranges are constant inside each epoch (stateless, jit-friendly
   training) and `RecalibrateRanges` refreshes them between epochs, the role of TF-MOT's moving-average observers.
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
    keras.layers.Identity, keras.layers.InputLayer, keras.layers.ZeroPadding2D,
)
CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)  # what a following BatchNormalization folds into
FUSABLE_ACTIVATIONS = {"relu", "relu6"}
FUSED_ACTIVATION_OPS = (*CONVOLUTIONS, keras.layers.Dense, keras.layers.Add)  # TFLite fuses a ReLU/ReLU6 into them
SOFTMAX_RANGE = (0.0, 255.0 / 256.0)  # TFLite's fixed int8 softmax output: scale 1/256, zero point -128


@keras.saving.register_keras_serializable(package="edgecnn")
class ActivationQuantizer(keras.layers.Layer):
    """Fake-quantises activations to 8 bits over a calibrated [min, max] range (straight-through gradients).

    `joins` names the quantiser of the ADD that is this tensor's only consumer: the converter gives such a tensor
    the union of its own range and the ADD's (TF 2.21, measured; not when a ReLU is fused into the ADD).
    """

    def __init__(self, fixed_range: tuple[float, float] | None = None, joins: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.fixed_range = tuple(fixed_range) if fixed_range is not None else None
        self.joins = joins

    def build(self, input_shape) -> None:
        _add_range(self, *(self.fixed_range or (0.0, 0.0)))

    def call(self, inputs):
        return _fake_quant(self, inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "fixed_range": self.fixed_range, "joins": self.joins}


@keras.saving.register_keras_serializable(package="edgecnn")
class QATRescaling(keras.layers.Rescaling):
    """Rescaling with an offset as TFLite runs it before a 'same'-padded conv: MUL, then ADD, each requantised.

    The converter gives the MUL's output the union of the MUL's and the ADD's calibrated ranges (TF 2.21, measured
    on several scale/offset/pixel-range combinations), so the scaled pixels are quantised over that union here;
    the ADD's output gets the usual `ActivationQuantizer` after this layer.
    """

    def build(self, input_shape) -> None:
        _add_range(self, 0.0, 0.0)
        self.built = True

    def call(self, inputs):
        scaled = ops.cast(inputs, self.compute_dtype) * ops.cast(self.scale, self.compute_dtype)
        return _fake_quant(self, scaled) + ops.cast(self.offset, self.compute_dtype)


def _add_range(layer: keras.layers.Layer, low: float, high: float) -> None:
    """Give `layer` the non-trainable [range_min, range_max] of an 8-bit activation quantiser."""
    for name, value in (("range_min", low), ("range_max", high)):
        setattr(layer, name, layer.add_weight(name=name, shape=(), initializer=keras.initializers.Constant(value),
                                              trainable=False))


def _fake_quant(layer: keras.layers.Layer, tensor):
    return keras.quantizers.fake_quant_with_min_max_vars(tensor, layer.range_min, layer.range_max, num_bits=8)


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


@keras.saving.register_keras_serializable(package="edgecnn")
class QATDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D whose (kh, kw, C, M) kernel is fake-quantised per output channel c·M + m, as TFLite's int8
    DEPTHWISE_CONV_2D stores it (per channel on axis 3 of its (1, kh, kw, C·M) layout)."""

    @property
    def kernel(self):
        kernel = self._kernel
        flat = ops.reshape(kernel, (*kernel.shape[:2], -1))
        return ops.reshape(_fake_quant_weights(flat), kernel.shape)

    @kernel.setter
    def kernel(self, value) -> None:  # DepthwiseConv2D.build assigns self.kernel
        self._kernel = value


QAT_LAYERS: dict[type, type] = {
    keras.layers.Conv2D: QATConv2D, keras.layers.DepthwiseConv2D: QATDepthwiseConv2D, keras.layers.Dense: QATDense,
    keras.layers.Rescaling: QATRescaling,  # only with an offset: see `_qat_class`
}
PLAIN_LAYERS: dict[type, type] = {qat: plain for plain, qat in QAT_LAYERS.items()}
# Weighted layers QAT would leave in float while the converter quantises them: refuse rather than mis-emulate.
UNSUPPORTED = (
    keras.layers.SeparableConv2D, keras.layers.Conv2DTranspose, keras.layers.Conv1D, keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D, keras.layers.SeparableConv1D,
)


def inference_graph(model: keras.Model) -> keras.Model:
    """The float graph TFLite runs: nested models inlined, BN folded into its conv, softmax split off Dense."""
    flat = _flatten(model)
    consumers = _consumers(flat)
    bn_of_conv = {
        producer.name: layer for layer in flat.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        and isinstance(producer := _producer(layer), CONVOLUTIONS)
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
            f"QAT supports Conv2D, DepthwiseConv2D and Dense weights; {model.name} has unsupported layers "
            f"{unsupported}"
        )
    folded = _folded_rescalings(graph)
    quantised = {name: joins for name, joins in _quantisation_points(graph).items() if name not in folded}

    def call_function(layer: keras.layers.Layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        if layer.name not in quantised:
            return outputs
        fixed = SOFTMAX_RANGE if isinstance(layer, keras.layers.Softmax) else None
        joins = f"{quantised[layer.name]}_quant" if quantised[layer.name] else None
        return ActivationQuantizer(fixed_range=fixed, joins=joins, name=f"{layer.name}_quant")(outputs)

    qat = _clone_with_weights(graph, lambda layer: type(layer) if layer.name in folded else _qat_class(layer),
                              call_function)
    if calibration_images is not None:
        calibrate(qat, calibration_images)
    return qat


def calibrate(qat_model: keras.Model, calibration_images: np.ndarray, batch_size: int = 64) -> None:
    """Set every activation range to what the TFLite calibrator measures: the min/max of the float model (the
    fine-tuned weights, nothing fake-quantised) over `calibration_images`, widened to include 0."""
    quantizers = [
        layer for layer in qat_model.layers
        if isinstance(layer, QATRescaling) or (isinstance(layer, ActivationQuantizer) and layer.fixed_range is None)
    ]
    float_model = strip_qat(qat_model)
    sources = [layer.name if isinstance(layer, QATRescaling) else _producer(layer).name for layer in quantizers]
    probe = keras.Model(float_model.input, [float_model.get_layer(name).output for name in sources])
    low, high = np.zeros(len(quantizers)), np.zeros(len(quantizers))
    for start in range(0, len(calibration_images), batch_size):
        batch = calibration_images[start:start + batch_size].astype(np.float32)
        for index, output in enumerate(keras.tree.flatten(probe(batch, training=False))):
            output = ops.convert_to_numpy(output)
            observed = [output]
            if isinstance(quantizers[index], QATRescaling):  # the MUL's range: the union of its own and the ADD's
                observed.append(output - np.asarray(quantizers[index].offset))
            low[index] = min(low[index], *(values.min() for values in observed))
            high[index] = max(high[index], *(values.max() for values in observed))
    ranges = {layer.name: (lo, hi) for layer, lo, hi in zip(quantizers, low, high)}
    for layer in quantizers:
        lo, hi = ranges[layer.name]
        joined = getattr(layer, "joins", None)
        if joined:
            lo, hi = min(lo, ranges[joined][0]), max(hi, ranges[joined][1])
        lo, hi = _int8_range(lo, hi)
        layer.range_min.assign(lo)
        layer.range_max.assign(hi)


def _int8_range(low: float, high: float) -> tuple[float, float]:
    """The range the converter's int8 tensor represents for a calibrated [low, high] (which includes 0).

    Scale (high − low) / 255 and zero point −128 − low / scale rounded half away from zero, as the converter does;
    fake-quantisation's own nudging rounds a zero point of −0.5 the other way, a grid one step off at its ends.
    """
    if high <= low:
        return low, high
    scale = (high - low) / 255
    exact = -128 - low / scale
    zero_point = float(np.clip(np.sign(exact) * np.floor(np.abs(exact) + 0.5), -128, 127))
    return (-128 - zero_point) * scale, (127 - zero_point) * scale


class RecalibrateRanges(keras.callbacks.Callback):
    """Recalibrates activation ranges at each epoch start, so they follow the weights as fine-tuning moves them."""

    def __init__(self, calibration_images: np.ndarray):
        super().__init__()
        self.calibration_images = calibration_images

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        calibrate(self.model, self.calibration_images)


def fine_tune(
    model: keras.Model,
    calibration_images: np.ndarray,
    train_data,
    epochs: int,
    optimizer: keras.optimizers.Optimizer,
    loss: keras.losses.Loss | str,
    validation_data=None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = 0,
    **fit_kwargs,
) -> keras.Model:
    """Prepare a QAT copy of `model`, fine-tune it (ranges recalibrated every epoch) and calibrate it a last time.

    `train_data` and `fit_kwargs` go to `Model.fit` as they are (arrays with `y=`/`batch_size=`, or a PyDataset).
    """
    qat_model = prepare_qat(model, calibration_images)
    qat_model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    qat_model.fit(
        train_data, validation_data=validation_data, epochs=epochs, verbose=verbose,
        callbacks=[RecalibrateRanges(calibration_images), *(callbacks or [])], **fit_kwargs,
    )
    calibrate(qat_model, calibration_images)  # the ranges of the final weights, as the converter will measure them
    return qat_model


def strip_qat(qat_model: keras.Model) -> keras.Model:
    """The float model with the fine-tuned weights and no quantisers (what the converter gets)."""

    def call_function(layer: keras.layers.Layer, *args, **kwargs):
        return args[0] if isinstance(layer, ActivationQuantizer) else layer(*args, **kwargs)

    return _clone_with_weights(qat_model, lambda layer: PLAIN_LAYERS.get(type(layer), type(layer)), call_function)


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


def _qat_class(layer: keras.layers.Layer) -> type:
    """The fake-quantised class standing in for `layer` in the QAT model (its own class if none)."""
    if type(layer) is keras.layers.Rescaling and not np.any(layer.get_config()["offset"]):
        return keras.layers.Rescaling  # folded into the next conv by the converter: no MUL/ADD tensor to emulate
    return QAT_LAYERS.get(type(layer), type(layer))


def _clone_with_weights(
    model: keras.Model, swap_class: Callable[[keras.layers.Layer], type], call_function: Callable,
) -> keras.Model:
    """Clone a flat functional model, rebuilding each layer as `swap_class(layer)` and copying weights by name."""
    clone = keras.models.clone_model(
        model,
        clone_function=lambda layer: swap_class(layer).from_config(layer.get_config()),
        call_function=call_function,
    )
    originals = {layer.name: layer for layer in model.layers}
    for layer in clone.layers:
        original = originals.get(layer.name)
        if original is not None and original.weights and layer.weights:  # not Rescaling ↔ QATRescaling
            layer.set_weights(original.get_weights())
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


def _folded_rescalings(graph: keras.Model) -> set[str]:
    """Rescaling layers the converter folds whole into the 'valid'-padded convolution after them."""
    consumers = _consumers(graph)
    return {
        layer.name for layer in graph.layers
        if isinstance(layer, keras.layers.Rescaling) and len(after := consumers[layer.name]) == 1
        and isinstance(after[0], CONVOLUTIONS) and after[0].get_config()["padding"] == "valid"
    }


def _quantisation_points(graph: keras.Model) -> dict[str, str | None]:
    """Layers whose output TFLite stores as its own int8 tensor → the ADD whose range that tensor joins, if any."""
    consumers = _consumers(graph)

    def fused(layer: keras.layers.Layer) -> bool:
        after = consumers[layer.name]
        return (isinstance(layer, FUSED_ACTIVATION_OPS) and len(after) == 1
                and _activation_name(after[0]) in FUSABLE_ACTIVATIONS)

    points = [layer for layer in graph.layers if not isinstance(layer, SCALE_PRESERVING) and not fused(layer)]

    def joined_add(layer: keras.layers.Layer) -> str | None:
        after = consumers[layer.name]
        joins = (
            len(after) == 1 and isinstance(after[0], keras.layers.Add) and not fused(after[0])
            # On a 1×1 feature map the converter squeezes the tensor (RESHAPE) before the ADD: it keeps its range.
            and len(after[0].output.shape) == 4 and tuple(after[0].output.shape[1:3]) != (1, 1)
        )
        return after[0].name if joins else None

    return {layer.name: joined_add(layer) for layer in points}


def _fold(conv: keras.layers.Layer, bn: keras.layers.BatchNormalization) -> list[np.ndarray]:
    """Conv kernel and bias with the inference-mode BN folded in: w·γ/σ and (b − μ)·γ/σ + β."""
    weights = conv.get_weights()
    kernel = weights[0]
    bn_weights = dict(zip([w.path.split("/")[-1] for w in bn.weights], bn.get_weights()))
    scale = 1.0 / np.sqrt(bn_weights["moving_variance"] + bn.epsilon)
    if "gamma" in bn_weights:
        scale = scale * bn_weights["gamma"]
    shift = bn_weights.get("beta", 0.0) - bn_weights["moving_mean"] * scale
    bias = np.zeros_like(shift) if len(weights) == 1 else weights[1]
    # A depthwise kernel is (kh, kw, C, M) with output channel c·M + m: the BN scale reshaped to (C, M) lines up.
    kernel_scale = scale.reshape(kernel.shape[-2:]) if isinstance(conv, keras.layers.DepthwiseConv2D) else scale
    return [(kernel * kernel_scale).astype(np.float32), (bias * scale + shift).astype(np.float32)]

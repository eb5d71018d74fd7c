"""What the TFLite converter (TF 2.21) does to a float Keras graph when it builds the full-int8 model.

Found by comparing the converter's output tensor by tensor; the QAT model (`emulation`) follows these rules so
that the graph it fake-quantises is the graph that is deployed:

* a BatchNormalization after a conv or depthwise conv is folded into it (`fold_batchnorm`);
* a quantised int8 tensor follows every op (ADD, MUL and MEAN requantise too), except an op whose only consumer is a
  ReLU/ReLU6 fused into it (conv, depthwise, FC, ADD), a conv or FC whose only consumer adds a constant to it (the
  constant is folded into its bias) and the scale-preserving ops (max-pooling, reshape, zero-padding: PAD keeps its
  input's scale, or is folded into the convolution after it) — `quantisation_points`. The ops include the
  `keras.ops` calls a functional graph records (`x + 3.0`, `x * (1 / 6)`: ADD and MUL), `SUPPORTED_OPS`;
* a tensor whose only consumer is an ADD without a fused ReLU gets the union of its own range and the ADD's,
  except on a 1×1 feature map, where the converter squeezes it (RESHAPE) before the ADD; a constant multiple
  (`x * c`) whose only consumer is a MUL by a tensor of the same shape likewise joins that MUL's range;
* a Rescaling without offset is folded into the conv after it (the quantiser after it has the uint8 input's
  grid); with an offset it stays a MUL and an ADD, both requantised, before a 'same'-padded conv, and any
  Rescaling is folded whole, with no quantiser, into a 'valid'-padded conv after it (`folded_rescalings`);
* softmax outputs have the fixed range `SOFTMAX_RANGE`; activation ranges are the calibrated min/max widened to
  include 0, on the grid `int8_range` gives; kernels are symmetric narrow-range int8 per output channel.
"""

from __future__ import annotations

import keras
import numpy as np

from edgecnn.quant.graph import consumers, is_layer, op_class, operations, producers

# Ops whose int8 output reuses the input's quantisation parameters, so no quantiser follows them.
SCALE_PRESERVING = (
    keras.layers.MaxPooling2D, keras.layers.Dropout, keras.layers.Flatten, keras.layers.Reshape,
    keras.layers.Identity, keras.layers.InputLayer, keras.layers.ZeroPadding2D,
)
CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)  # what a following BatchNormalization folds into
FUSABLE_ACTIVATIONS = {"relu", "relu6"}
HARD_SWISH = {"hard_silu", "hard_swish"}  # Activation names Keras gives hard-swish (hard_swish is an alias)
# `keras.ops` calls a functional graph records as operations (not layers) that QAT emulates; any other is refused.
# keras.applications' MobileNetV3 builds hard-sigmoid as `ReLU(6)(x + 3.0) * (1 / 6)`: an Add, a ReLU layer, a
# Multiply, then the squeeze-excite Multiply layer — measured against the converter, emulated exactly. Subtract and
# the ReLU operations are not in the zoo and were not measured: they get the rules of their layer counterparts (a
# quantiser after a Subtract, a ReLU operation fused like the ReLU layer), an approximation where the converter
# would fold a subtracted constant into a conv's bias as it does an added one.
ADD_OP, MULTIPLY_OP = op_class("Add"), op_class("Multiply")
RELU_OPS = {op_class("Relu"): "relu", op_class("Relu6"): "relu6"}
SUPPORTED_OPS = (ADD_OP, op_class("Subtract"), MULTIPLY_OP, *RELU_OPS)
FUSED_ACTIVATION_OPS = (*CONVOLUTIONS, keras.layers.Dense, keras.layers.Add, ADD_OP)  # TFLite fuses a ReLU into them
SOFTMAX_RANGE = (0.0, 255.0 / 256.0)  # TFLite's fixed int8 softmax output: scale 1/256, zero point -128
# Weighted layers QAT would leave in float while the converter quantises them: refuse rather than mis-emulate.
UNSUPPORTED = (
    keras.layers.SeparableConv2D, keras.layers.Conv2DTranspose, keras.layers.Conv1D, keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D, keras.layers.SeparableConv1D,
)


def activation_name(layer: keras.layers.Layer) -> str | None:
    """'relu' / 'relu6' / the activation's name for an activation layer; None for anything else."""
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        plain = not config.get("negative_slope") and not config.get("threshold")
        return {None: "relu", 6.0: "relu6"}.get(config.get("max_value")) if plain else None
    if isinstance(layer, keras.layers.Activation):
        return layer.get_config()["activation"]
    return RELU_OPS.get(type(layer))


def unsupported_ops(graph: keras.Model) -> list[str]:
    """'name (Class)' of every `keras.ops` operation of `graph` that QAT does not emulate (see `SUPPORTED_OPS`)."""
    return [
        f"{operation.name} ({type(operation).__name__})" for operation in operations(graph)
        if not is_layer(operation) and not isinstance(operation, SUPPORTED_OPS)
    ]


def multiplies_constant(operation) -> bool:
    """A Multiply operation with one tensor operand: `x * (1 / 6)`."""
    return isinstance(operation, MULTIPLY_OP) and len(producers(operation)) == 1


def adds_constant(operation) -> bool:
    """An Add operation with one tensor operand: `x + 3.0` (the constant is no tensor of the graph)."""
    return isinstance(operation, ADD_OP) and len(producers(operation)) == 1


def folded_rescalings(graph: keras.Model) -> set[str]:
    """Rescaling layers the converter folds whole into the 'valid'-padded convolution after them."""
    after_layer = consumers(graph)
    return {
        layer.name for layer in graph.layers
        if isinstance(layer, keras.layers.Rescaling) and len(after := after_layer[layer.name]) == 1
        and isinstance(after[0], CONVOLUTIONS) and after[0].get_config()["padding"] == "valid"
    }


def quantisation_points(graph: keras.Model) -> dict[str, str | None]:
    """Operations whose output TFLite stores as its own int8 tensor → the ADD or MUL whose range it joins, if any."""
    after_layer = consumers(graph)

    def fused(layer: keras.layers.Layer) -> bool:
        after = after_layer[layer.name]
        return (isinstance(layer, FUSED_ACTIVATION_OPS) and len(after) == 1
                and activation_name(after[0]) in FUSABLE_ACTIVATIONS)

    def bias_folded(layer: keras.layers.Layer) -> bool:
        # A constant added to a conv's or FC's output is folded into its bias (TF 2.21, measured on MobileNetV3's
        # hard-sigmoid `conv + 3.0`): the sum is the op's output, which is quantised (or not, if a ReLU is fused
        # into the Add) in its place.
        after = after_layer[layer.name]
        return isinstance(layer, (*CONVOLUTIONS, keras.layers.Dense)) and len(after) == 1 and adds_constant(after[0])

    # Every layer and every keras.ops operation: a Multiply operation (`x * (1 / 6)`) is a MUL with a requantised
    # output (measured), like the Multiply layer.
    points = [
        layer for layer in operations(graph)
        if not isinstance(layer, SCALE_PRESERVING) and not fused(layer) and not bias_folded(layer)
    ]

    def joined(layer: keras.layers.Layer) -> str | None:
        after = after_layer[layer.name]
        if len(after) != 1:
            return None
        (consumer,) = after
        joins_add = (
            isinstance(consumer, (keras.layers.Add, ADD_OP)) and not adds_constant(consumer) and not fused(consumer)
            # On a 1×1 feature map the converter squeezes the tensor (RESHAPE) before the ADD: it keeps its range.
            and len(consumer.output.shape) == 4 and tuple(consumer.output.shape[1:3]) != (1, 1)
        )
        # A constant multiple whose only consumer multiplies it by a tensor of its own shape joins that MUL's range
        # too (TF 2.21, measured: MobileNetV3's hard-sigmoid `relu6(x + 3) * (1 / 6)` times 1×1 squeeze-excite
        # features; inside `QATHardSwish`, the lowered hard-swish's x / 6); times a broadcast gate it keeps its own.
        joins_mul = (
            multiplies_constant(layer) and isinstance(consumer, (keras.layers.Multiply, MULTIPLY_OP))
            and len(producers(consumer)) == 2 and tuple(consumer.output.shape) == tuple(layer.output.shape)
        )
        return consumer.name if joins_add or joins_mul else None

    return {layer.name: joined(layer) for layer in points}


def int8_range(low: float, high: float) -> tuple[float, float]:
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


def fold_batchnorm(conv: keras.layers.Layer, bn: keras.layers.BatchNormalization) -> list[np.ndarray]:
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

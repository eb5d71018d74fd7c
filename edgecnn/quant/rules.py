"""What the TFLite converter (TF 2.21) does to a float Keras graph when it builds the full-int8 model.

Found by comparing the converter's output tensor by tensor; the QAT model (`emulation`) follows these rules so
that the graph it fake-quantises is the graph that is deployed:

* a BatchNormalization after a conv or depthwise conv is folded into it (`fold_batchnorm`);
* a quantised int8 tensor follows every op (ADD and MEAN requantise too), except an op whose only consumer is a
  ReLU/ReLU6 fused into it (conv, depthwise, FC, ADD) and the scale-preserving ops (max-pooling, reshape,
  zero-padding: PAD keeps its input's scale, or is folded into the convolution after it) — `quantisation_points`;
* a tensor whose only consumer is an ADD without a fused ReLU gets the union of its own range and the ADD's,
  except on a 1×1 feature map, where the converter squeezes it (RESHAPE) before the ADD;
* a Rescaling without offset is folded into the conv after it (the quantiser after it has the uint8 input's
  grid); with an offset it stays a MUL and an ADD, both requantised, before a 'same'-padded conv, and any
  Rescaling is folded whole, with no quantiser, into a 'valid'-padded conv after it (`folded_rescalings`);
* softmax outputs have the fixed range `SOFTMAX_RANGE`; activation ranges are the calibrated min/max widened to
  include 0, on the grid `int8_range` gives; kernels are symmetric narrow-range int8 per output channel.
"""

from __future__ import annotations

import keras
import numpy as np

from edgecnn.quant.graph import consumers

# Ops whose int8 output reuses the input's quantisation parameters, so no quantiser follows them.
SCALE_PRESERVING = (
    keras.layers.MaxPooling2D, keras.layers.Dropout, keras.layers.Flatten, keras.layers.Reshape,
    keras.layers.Identity, keras.layers.InputLayer, keras.layers.ZeroPadding2D,
)
CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)  # what a following BatchNormalization folds into
FUSABLE_ACTIVATIONS = {"relu", "relu6"}
FUSED_ACTIVATION_OPS = (*CONVOLUTIONS, keras.layers.Dense, keras.layers.Add)  # TFLite fuses a ReLU/ReLU6 into them
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
    return None


def folded_rescalings(graph: keras.Model) -> set[str]:
    """Rescaling layers the converter folds whole into the 'valid'-padded convolution after them."""
    after_layer = consumers(graph)
    return {
        layer.name for layer in graph.layers
        if isinstance(layer, keras.layers.Rescaling) and len(after := after_layer[layer.name]) == 1
        and isinstance(after[0], CONVOLUTIONS) and after[0].get_config()["padding"] == "valid"
    }


def quantisation_points(graph: keras.Model) -> dict[str, str | None]:
    """Layers whose output TFLite stores as its own int8 tensor → the ADD whose range that tensor joins, if any."""
    after_layer = consumers(graph)

    def fused(layer: keras.layers.Layer) -> bool:
        after = after_layer[layer.name]
        return (isinstance(layer, FUSED_ACTIVATION_OPS) and len(after) == 1
                and activation_name(after[0]) in FUSABLE_ACTIVATIONS)

    points = [layer for layer in graph.layers if not isinstance(layer, SCALE_PRESERVING) and not fused(layer)]

    def joined_add(layer: keras.layers.Layer) -> str | None:
        after = after_layer[layer.name]
        joins = (
            len(after) == 1 and isinstance(after[0], keras.layers.Add) and not fused(after[0])
            # On a 1×1 feature map the converter squeezes the tensor (RESHAPE) before the ADD: it keeps its range.
            and len(after[0].output.shape) == 4 and tuple(after[0].output.shape[1:3]) != (1, 1)
        )
        return after[0].name if joins else None

    return {layer.name: joined_add(layer) for layer in points}


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

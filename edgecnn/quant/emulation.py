"""The fake-quantised model that emulates, in float, exactly the int8 graph the TFLite converter builds.

1. `inference_graph` flattens nested models and folds each BatchNormalization into the convolution before it, as
   the converter does. Folding (rather than keeping BN and quantising after it) makes the weights that are
   fake-quantised the weights that are deployed; BN statistics are frozen from then on, which is what a short
   fine-tune wants anyway. A Dense with a softmax is split into Dense + Softmax, since TFLite quantises the logits
   and the probabilities apart. DepthwiseConv2D gets the same folding (its output channel c·M + m is BN channel
   c·M + m).
2. `prepare_qat` swaps Conv2D/DepthwiseConv2D/Dense for subclasses that fake-quantise their kernel like the
   converter (symmetric int8, narrow range, per output channel: TF 2.21 quantises FULLY_CONNECTED per channel too,
   and DEPTHWISE_CONV_2D per channel c·M + m of its (1, kh, kw, C·M) kernel) and inserts an `ActivationQuantizer`
   at every quantisation point of `rules` (Rescaling with an offset before a 'same' conv: `QATRescaling`
   quantises its MUL; hard-swish, which the int8 export lowers to MUL, ADD and MUL: `QATHardSwish`). The points
   include the `keras.ops` calls a graph records as operations (MobileNetV3's hard-sigmoid `relu6(x + 3) / 6`);
   `rules.SUPPORTED_OPS` lists those emulated, and any other is refused. Input pixels are not fake-quantised:
   uint8 pixels are exact on the input's grid when the calibration images span 0..255.
3. `calibrate` sets each range to the min/max of the float model (fine-tuned weights, nothing fake-quantised) over
   the calibration images, widened to include 0: what the converter's calibrator measures, with the converter's
   range-joining rules (`ActivationQuantizer.joins`; Rescaling's MUL and hard-swish's x / 6 likewise). With them
   every quantiser of MobileNetV2 and MobileNetV3-Small has the converter's scale and zero point. Ranges are
   constant while the model trains (stateless, jit-friendly); a training loop recalibrates between epochs
   (`edgecnn.train.qat.RecalibrateRanges`).
4. `strip_qat` removes the quantisers (same layers, same names, fine-tuned weights): converting that with the
   full-int8 PTQ path on the same calibration images gives the op set of PTQ by construction, and the converter
   re-derives the ranges the QAT model trained against. The graph is not exported with FakeQuant ops (the
   converter's own QAT mode): that would carry learned ranges over, but gives up the op-set guarantee.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from edgecnn.quant.graph import consumers, flatten, get_operation, producer
from edgecnn.quant.layers import PLAIN_LAYERS, QAT_LAYERS, ActivationQuantizer, QATHardSwish, QATRescaling
from edgecnn.quant.rules import (
    CONVOLUTIONS,
    HARD_SWISH,
    SOFTMAX_RANGE,
    SUPPORTED_OPS,
    UNSUPPORTED,
    activation_name,
    fold_batchnorm,
    folded_rescalings,
    int8_range,
    quantisation_points,
    unsupported_ops,
)


def inference_graph(model: keras.Model) -> keras.Model:
    """The float graph TFLite runs: nested models inlined, BN folded into its conv, softmax split off Dense."""
    flat = flatten(model)
    after_layer = consumers(flat)
    bn_of_conv = {
        conv.name: layer for layer in flat.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        and isinstance(conv := producer(layer), CONVOLUTIONS)
        and len(after_layer[conv.name]) == 1
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
            layer.set_weights(fold_batchnorm(flat.get_layer(layer.name), bn_of_conv[layer.name]))
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
    if unsupported := unsupported_ops(graph):
        supported = ", ".join(op.__name__ for op in SUPPORTED_OPS)
        raise ValueError(
            f"QAT supports the keras.ops operations {supported} in a functional graph; {model.name} has keras.ops "
            f"operations {', '.join(unsupported)}"
        )
    folded = folded_rescalings(graph)
    quantised = {name: joins for name, joins in quantisation_points(graph).items() if name not in folded}

    def call_function(layer: keras.layers.Layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        if layer.name not in quantised:
            return outputs
        fixed = SOFTMAX_RANGE if isinstance(layer, keras.layers.Softmax) else None
        joins = f"{quantised[layer.name]}_quant" if quantised[layer.name] else None
        return ActivationQuantizer(fixed_range=fixed, joins=joins, name=f"{layer.name}_quant")(outputs)

    qat = _clone_with_weights(graph, lambda layer: type(layer) if layer.name in folded else qat_class(layer),
                              call_function)
    if calibration_images is not None:
        calibrate(qat, calibration_images)
    return qat


def calibrate(qat_model: keras.Model, calibration_images: np.ndarray, batch_size: int = 64) -> None:
    """Set every activation range to what the TFLite calibrator measures: the min/max of the float model (the
    fine-tuned weights, nothing fake-quantised) over `calibration_images`, widened to include 0."""
    quantizers = [
        layer for layer in qat_model.layers
        if isinstance(layer, (QATRescaling, QATHardSwish))
        or (isinstance(layer, ActivationQuantizer) and layer.fixed_range is None)
    ]
    float_model = strip_qat(qat_model)

    def source(layer: keras.layers.Layer):
        """The float tensor the layer's ranges are measured on: Rescaling's own output, hard-swish's input."""
        if isinstance(layer, QATRescaling):
            return get_operation(float_model, layer.name).output
        if isinstance(layer, QATHardSwish):
            return producer(get_operation(float_model, layer.name)).output
        return get_operation(float_model, producer(layer).name).output

    def observed(layer: keras.layers.Layer, output: np.ndarray) -> dict[str, list[np.ndarray]]:
        """Range prefix → the float tensors its range covers."""
        if isinstance(layer, QATRescaling):  # the MUL's range: the union of its own and the ADD's
            return {"range": [output, output - np.asarray(layer.offset)]}
        if isinstance(layer, QATHardSwish):  # x / 6 and relu6(x + 3), from the hard-swish's input x
            return {"range": [output / 6.0], "gate_range": [np.clip(output + 3.0, 0.0, 6.0)]}
        return {"range": [output]}

    probe = keras.Model(float_model.input, [source(layer) for layer in quantizers])
    ranges: dict[tuple[str, str], list[float]] = {}
    for start in range(0, len(calibration_images), batch_size):
        batch = calibration_images[start:start + batch_size].astype(np.float32)
        for layer, output in zip(quantizers, keras.tree.flatten(probe(batch, training=False))):
            for prefix, tensors in observed(layer, ops.convert_to_numpy(output)).items():
                bounds = ranges.setdefault((layer.name, prefix), [0.0, 0.0])
                bounds[0] = min(bounds[0], *(values.min() for values in tensors))
                bounds[1] = max(bounds[1], *(values.max() for values in tensors))
    for (name, prefix), (lo, hi) in ranges.items():
        layer = qat_model.get_layer(name)
        joined = getattr(layer, "joins", None)
        if isinstance(layer, QATHardSwish) and prefix == "range":
            joined = f"{name}_quant"  # x / 6 joins the product's range (see the class)
        if joined and (joined, "range") in ranges:
            lo, hi = min(lo, ranges[joined, "range"][0]), max(hi, ranges[joined, "range"][1])
        lo, hi = int8_range(lo, hi)
        getattr(layer, f"{prefix}_min").assign(lo)
        getattr(layer, f"{prefix}_max").assign(hi)


def strip_qat(qat_model: keras.Model) -> keras.Model:
    """The float model with the fine-tuned weights and no quantisers (what the converter gets)."""

    def call_function(layer: keras.layers.Layer, *args, **kwargs):
        return args[0] if isinstance(layer, ActivationQuantizer) else layer(*args, **kwargs)

    return _clone_with_weights(qat_model, lambda layer: PLAIN_LAYERS.get(type(layer), type(layer)), call_function)


def qat_class(layer: keras.layers.Layer) -> type:
    """The fake-quantised class standing in for `layer` in the QAT model (its own class if none)."""
    if type(layer) is keras.layers.Rescaling and not np.any(layer.get_config()["offset"]):
        return keras.layers.Rescaling  # folded into the next conv by the converter: no MUL/ADD tensor to emulate
    if type(layer) is keras.layers.Activation and activation_name(layer) not in HARD_SWISH:
        return keras.layers.Activation  # its int8 op's output is the quantiser after it: nothing inside to emulate
    # A hard-swish fused into a conv (`activation="hard_swish"`, which keras.applications does not use) stays as it
    # is: only its output is quantised, an approximation of the MUL, ADD and MUL the export lowers it to.
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

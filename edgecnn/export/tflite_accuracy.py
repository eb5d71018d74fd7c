"""TFLite accuracy control: QuantizationDebugger names the int8 layers that lose accuracy; the remedies are more
calibration images, those layers in float, and 16-bit activations (see edgecnn.export.control for the loop)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

from edgecnn.data.calibration import LARGER_CALIBRATION_FACTOR
from edgecnn.export import tflite
from edgecnn.export.control import QuantisationInputs, Remedy, noise_to_signal
from edgecnn.quant.graph import leaf_layers

# Images the QuantizationDebugger runs float and int8 layers on: enough for stable per-layer statistics.
DIAGNOSIS_IMAGES = 32
DIAGNOSIS_ROWS = 5
# A layer whose int8 error is over this fraction of its float output's spread is a culprit for float fallback.
CULPRIT_NOISE_TO_SIGNAL = 0.1
# Their output scale is fixed by the op (softmax: 1/256), not calibrated: a large error there comes from upstream.
FIXED_RANGE_OPS = frozenset({"SOFTMAX", "LOGISTIC", "TANH"})


def diagnose(inputs: QuantisationInputs) -> dict:
    """The int8 layers with the largest error relative to their float output, worst first.

    Each layer's float and int8 kernels see the same (dequantised) inputs, so the error is the layer's own, not
    accumulated from upstream; `noise_to_signal` = RMSE / std of the float output.
    """
    import tensorflow as tf

    options = tf.lite.experimental.QuantizationDebugOptions(
        layer_direct_compare_metrics={"noise_to_signal": _noise_to_signal}
    )
    with tflite.converter(inputs.model, "int8", inputs.calibration) as converter:
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=tflite.representative(inputs.calibration[:DIAGNOSIS_IMAGES]),
            debug_options=options,
        )
        debugger.run()
        dump = io.StringIO()
        debugger.layer_statistics_dump(dump)
    layer_names = {layer.name for layer in leaf_layers(inputs.model)} | {inputs.model.name}
    layer_names |= {layer.name for layer in inputs.model.layers}
    rows = list(csv.DictReader(io.StringIO(dump.getvalue())))  # in graph order
    layers = [
        {
            "tensor": row["tensor_name"],
            "op": row["op_name"],
            "keras_layer": _keras_layer(row["tensor_name"], layer_names),
            "noise_to_signal": round(float(row["noise_to_signal"]), 4),
            "rmse_over_scale": round(float(np.sqrt(float(row["mean_squared_error"])) / float(row["scale"])), 4),
            "scale": float(row["scale"]),
            "next_tensor": rows[index + 1]["tensor_name"] if index + 1 < len(rows) else None,
        }
        for index, row in enumerate(rows)
        if row["op_name"] not in FIXED_RANGE_OPS
    ]
    worst = sorted(layers, key=lambda layer: -layer["noise_to_signal"])[:DIAGNOSIS_ROWS]
    return {"layers": worst, "by": "TFLite QuantizationDebugger on the same Keras model and calibration images"}


def _noise_to_signal(float_tensors, quant_tensors, scale: float, zero_point: int) -> float:
    """QuantizationDebugger metric: `noise_to_signal` of the dequantised int8 outputs."""
    return noise_to_signal(float_tensors, [(np.asarray(q, np.float32) - zero_point) * scale for q in quant_tensors])


def _keras_layer(tensor_name: str, layer_names: set[str]) -> str | None:
    """The deepest Keras layer named in a TFLite tensor name (TF appends _1, _2 to traced scopes)."""
    parts = [re.sub(r"_\d+$", "", part) for part in tensor_name.split(";")[0].split("/")]
    return next((part for part in reversed(parts) if part in layer_names), None)


def culprits(diagnosis: tuple[dict, ...]) -> tuple[str, ...]:
    """Tensor names to keep in float: each layer over the noise threshold (at least the worst) and its successor.

    A float layer whose output is re-quantised for the next op loses the same range, so the next op in graph
    order stays float too (its consumer in the chain-shaped stems and heads where such outliers sit).
    """
    over = [layer for layer in diagnosis if layer["noise_to_signal"] >= CULPRIT_NOISE_TO_SIGNAL] or diagnosis[:1]
    names = [name for layer in over for name in (layer["tensor"], layer["next_tensor"]) if name]
    return tuple(dict.fromkeys(names))


def _larger_calibration(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
    larger = inputs.calibration_sample.take(LARGER_CALIBRATION_FACTOR * len(inputs.calibration))
    path = tflite.export(inputs.model, "int8", larger, target, **inputs.options)
    return path, {"calibration_images": int(len(larger))}


def _float_fallback(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
    """The diagnosed layers in float, the rest int8, with the int8 bundle's uint8 input and output."""
    import tensorflow as tf
    from tensorflow.lite.python import convert

    float_layers = culprits(inputs.diagnosis)
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(float_layers))
    with tflite.converter(inputs.model, "int8", inputs.calibration, **inputs.options) as converter:
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=tflite.representative(inputs.calibration[:1]), debug_options=options,
        )
        # debugger.get_nondebug_quantized_model() is this call with float input and output; the converter's own
        # int8 path passes its inference types here too (a float last layer gets a QUANTIZE op before the output).
        quantized = convert.mlir_quantize(
            debugger.calibrated_model,
            disable_per_channel=converter._experimental_disable_per_channel,
            fully_quantize=options.fully_quantize,
            input_data_type=converter.inference_input_type,
            output_data_type=converter.inference_output_type,
            denylisted_ops=options.denylisted_ops,
            denylisted_nodes=options.denylisted_nodes,
        )
    path = Path(target) / tflite.MODEL_FILE
    path.write_bytes(quantized)
    return path, {"float_layers": list(float_layers)}


def _int16x8(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
    return tflite.export(inputs.model, "int16x8", inputs.calibration, target), {}  # float I/O: int8_io n/a


REMEDIES: tuple[Remedy, ...] = (
    Remedy("larger_calibration", "int8", f"int8 calibrated on {LARGER_CALIBRATION_FACTOR}x the images",
           _larger_calibration),
    Remedy("float_fallback", "int8", "int8 with the diagnosed layers left in float (QuantizationDebugger "
           "denylisted_nodes; uint8 input and output)", _float_fallback),
    Remedy("int16x8", "int16x8", "16-bit activations, int8 weights", _int16x8),
)

"""Accuracy control for int8 exports: name the layers that lose accuracy, then try each format's remedies in order.

`STRATEGIES` lists, per format, what the conversion libraries offer, cheapest and most int8 first. The pipeline
builds every attempt as a complete bundle; the first one whose validation top-1 drop is within the budget is kept,
and if none is, `AccuracyBudgetError` carries the table of attempts and no bundle is written.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgecnn.data import ImageSet
from edgecnn.export.calibration import calibration_images
from edgecnn.export.formats import get_format
from edgecnn.runtime.bundle import Manifest, write_manifest

# Images the QuantizationDebugger runs float and int8 layers on: enough for stable per-layer statistics.
DIAGNOSIS_IMAGES = 32
# A layer whose int8 error is over this fraction of its float output's spread is a culprit for float fallback.
CULPRIT_NOISE_TO_SIGNAL = 0.1
# Their output scale is fixed by the op (softmax: 1/256), not calibrated: a large error there comes from upstream.
FIXED_RANGE_OPS = frozenset({"SOFTMAX", "LOGISTIC", "TANH"})
LARGER_CALIBRATION_FACTOR = 4
# ONNX float fallback: calibration images whose float and int8 activations are compared (every intermediate tensor
# of both models is kept in memory), and the most harmful activations it leaves in float, one more per attempt.
ONNX_DIAGNOSIS_IMAGES = 8
ONNX_MAX_FLOAT_ACTIVATIONS = 4


class AccuracyBudgetError(ValueError):
    """No accuracy-control strategy brought the top-1 drop within the budget."""


@dataclass(frozen=True)
class QuantisationInputs:
    """What a strategy may re-quantise from: the Keras model, calibration sample, its split, the checked split."""

    model: object
    calibration: np.ndarray
    train: ImageSet
    validation: ImageSet  # the split the budget is measured on
    seed: int
    max_drop: float | None = None  # validation top-1 points
    culprits: tuple[str, ...] = ()  # TFLite tensor names of the diagnosed layers
    options: dict = field(default_factory=dict)  # the recipe's export options for this format (e.g. int8_io)


@dataclass(frozen=True)
class Strategy:
    """One remedy a conversion library offers: it writes a model file into a bundle dir and returns facts."""

    name: str
    precision: str  # the precision the bundle records: a fallback may leave int8 (int16x8)
    description: str
    export: Callable[[QuantisationInputs, Path], tuple[Path, dict]]  # → model file written into the dir, facts


# build(target dir, export function, precision) → manifest with checks["parity"], the pipeline's one bundle writer.
BundleBuilder = Callable[[Path, Callable[[Path], Path], str], Manifest]


def diagnose(model, calibration: np.ndarray, top: int = 5) -> list[dict]:
    """The TFLite int8 layers with the largest error relative to their float output, worst first.

    Each layer's float and int8 kernels see the same (dequantised) inputs, so the error is the layer's own, not
    accumulated from upstream; `noise_to_signal` = RMSE / std of the float output.
    """
    import tensorflow as tf

    from edgecnn.export import tflite

    options = tf.lite.experimental.QuantizationDebugOptions(
        layer_direct_compare_metrics={"noise_to_signal": _noise_to_signal}
    )
    with tflite.converter(model, "int8", calibration) as converter:
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=tflite._representative(calibration[:DIAGNOSIS_IMAGES]),
            debug_options=options,
        )
        debugger.run()
        dump = io.StringIO()
        debugger.layer_statistics_dump(dump)
    layer_names = _keras_layer_names(model)
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
    return sorted(layers, key=lambda layer: -layer["noise_to_signal"])[:top]


def _noise_to_signal(float_tensors, quant_tensors, scale: float, zero_point: int) -> float:
    """QuantizationDebugger metric: `noise_to_signal` of the dequantised int8 outputs."""
    return noise_to_signal(float_tensors, [(np.asarray(q, np.float32) - zero_point) * scale for q in quant_tensors])


def noise_to_signal(reference: Iterable[np.ndarray], received: Iterable[np.ndarray]) -> float:
    """RMSE of `received` against `reference` over the reference's standard deviation (tensor lists, same shapes).

    Unlike a signal-to-noise ratio over the tensor's norm, a constant offset (logits around 1000) adds no signal.
    """
    reference = np.concatenate([np.ravel(np.asarray(tensor, np.float32)) for tensor in reference])
    received = np.concatenate([np.ravel(np.asarray(tensor, np.float32)) for tensor in received])
    return float(np.sqrt(np.mean((received - reference) ** 2)) / max(float(np.std(reference)), 1e-12))


def _keras_layer_names(model) -> set[str]:
    names = set()
    for layer in model.layers:
        names.add(layer.name)
        if hasattr(layer, "layers"):
            names |= _keras_layer_names(layer)
    return names


def _keras_layer(tensor_name: str, layer_names: set[str]) -> str | None:
    """The deepest Keras layer named in a TFLite tensor name (TF appends _1, _2 to traced scopes)."""
    parts = [re.sub(r"_\d+$", "", part) for part in tensor_name.split(";")[0].split("/")]
    return next((part for part in reversed(parts) if part in layer_names), None)


def culprits(diagnosis: list[dict]) -> tuple[str, ...]:
    """Tensor names to keep in float: each layer over the noise threshold (at least the worst) and its successor.

    A float layer whose output is re-quantised for the next op loses the same range, so the next op in graph
    order stays float too (its consumer in the chain-shaped stems and heads where such outliers sit).
    """
    over = [layer for layer in diagnosis if layer["noise_to_signal"] >= CULPRIT_NOISE_TO_SIGNAL] or diagnosis[:1]
    names = [name for layer in over for name in (layer["tensor"], layer["next_tensor"]) if name]
    return tuple(dict.fromkeys(names))


def _tflite_larger_calibration(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
    from edgecnn.export import tflite

    count = LARGER_CALIBRATION_FACTOR * len(inputs.calibration)
    larger = calibration_images(inputs.train, count, seed=inputs.seed)
    path = tflite.export(inputs.model, "int8", larger, target, **inputs.options)
    return path, {"calibration_images": int(len(larger))}


def _tflite_float_fallback(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
    """The diagnosed layers in float, the rest int8, with the int8 bundle's uint8 input and output."""
    import tensorflow as tf
    from tensorflow.lite.python import convert

    from edgecnn.export import tflite

    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(inputs.culprits))
    with tflite.converter(inputs.model, "int8", inputs.calibration, **inputs.options) as converter:
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=tflite._representative(inputs.calibration[:1]),
            debug_options=options,
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
    return path, {"float_layers": list(inputs.culprits)}


def _tflite_int16x8(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
    from edgecnn.export import tflite

    return tflite.export(inputs.model, "int16x8", inputs.calibration, target), {}  # float I/O: int8_io n/a


def _onnx_calibration(method: str) -> Callable[[QuantisationInputs, Path], tuple[Path, dict]]:
    def export(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
        onnx = get_format("onnx").load()
        options = {**inputs.options, "calibration_method": method}
        path = onnx.export(inputs.model, "int8", inputs.calibration, target, **options)
        return path, {"calibration_method": method}

    return export


def diagnose_onnx(prepared: Path, quantized: Path, images: np.ndarray, scratch: Path, top: int) -> list[dict]:
    """The activations of an ONNX QDQ model that int8 hurts most, worst first, with the nodes to leave in float.

    onnxruntime's qdq_loss_debug runs the float and the QDQ graph on the same images and matches their activations;
    each one's error is `noise_to_signal` of the QDQ value against the float one. That error accumulates downstream,
    so activations are ranked by the error they add over the worst input of the node that makes them.
    """
    import onnx
    from onnxruntime.quantization import qdq_loss_debug

    from edgecnn.export import onnx as onnx_export

    activations = {}
    for role, model in (("float", prepared), ("qdq", quantized)):
        augmented = scratch / f"{role}-activations.onnx"
        qdq_loss_debug.modify_model_output_intermediate_tensors(str(model), str(augmented))
        reader = onnx_export.CalibrationImages(onnx_export.input_name(model), images)
        activations[role] = qdq_loss_debug.collect_activations(str(augmented), reader)
    matching = qdq_loss_debug.create_activation_matching(activations["qdq"], activations["float"])
    matched = {name: match for name, match in matching.items() if "float" in match}
    errors = {
        name: error["xmodel_err"]
        for name, error in qdq_loss_debug.compute_activation_error(matched, noise_to_signal).items()
    }

    graph = onnx.load(str(prepared), load_external_data=False).graph
    producers = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.name)

    @functools.cache
    def upstream(tensor: str) -> tuple[tuple[str, ...], float]:
        """The nodes from the nearest matched activations to `tensor`, and the worst error among those activations.

        A tensor the quantiser fused away (a Conv output before its Relu) has no QDQ value: look through it.
        """
        node = producers[tensor]
        nodes, worst = (node.name,), 0.0
        for name in node.input:
            if name in errors:
                worst = max(worst, errors[name])
            elif name in producers:
                more, error = upstream(name)
                nodes, worst = nodes + more, max(worst, error)
        return nodes, worst

    rows = []
    for tensor, error in errors.items():
        if tensor not in producers:
            continue  # a graph input: no node to leave in float
        nodes, upstream_error = upstream(tensor)
        # Its consumers stay float too: a quantised consumer would put the tensor back on the same int8 grid.
        float_nodes = list(dict.fromkeys([*reversed(nodes), *consumers.get(tensor, [])]))
        rows.append({
            "tensor": tensor, "node": producers[tensor].name, "op": producers[tensor].op_type,
            "noise_to_signal": round(error, 4), "added_noise_to_signal": round(error - upstream_error, 4),
            "float_nodes": float_nodes,
        })
    return sorted(rows, key=lambda row: -row["added_noise_to_signal"])[:top]


def _onnx_float_fallback(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
    """int8 QDQ with the worst activations' nodes in `nodes_to_exclude`, one more activation per try until within
    budget (measured on the validation split like the pipeline's parity check) or ONNX_MAX_FLOAT_ACTIVATIONS."""
    from edgecnn.export import onnx as onnx_export
    from edgecnn.export.checks import keras_probabilities, parity_checks
    from edgecnn.runtime.backends.onnxruntime import open_model

    keras_probs = keras_probabilities(inputs.model, inputs.validation)
    with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as tmp:
        scratch = Path(tmp)
        float_model = onnx_export.convert_float32(inputs.model, scratch / "float32.onnx")
        prepared = onnx_export.prepare(float_model, scratch / "prepared.onnx")
        candidate = scratch / onnx_export.MODEL_FILE
        settings = onnx_export.Int8Settings(**inputs.options)
        onnx_export.quantize(prepared, candidate, inputs.calibration, settings)
        diagnosis = diagnose_onnx(
            prepared, candidate, inputs.calibration[:ONNX_DIAGNOSIS_IMAGES], scratch, ONNX_MAX_FLOAT_ACTIVATIONS
        )
        if not diagnosis:
            raise ValueError(f"{prepared.name}: no int8 activation to leave in float (no node makes one)")
        tries = []
        for count in range(1, len(diagnosis) + 1):
            nodes = tuple(dict.fromkeys(node for row in diagnosis[:count] for node in row["float_nodes"]))
            facts = onnx_export.quantize(
                prepared, candidate, inputs.calibration, replace(settings, nodes_to_exclude=nodes)
            )
            backend = open_model(candidate)
            probabilities = np.stack([backend.run(image[None]) for image in inputs.validation.images])
            drop = parity_checks(keras_probs, probabilities, inputs.validation.labels, "int8")["top1_drop_points"]
            tries.append({"float_activations": count, "float_nodes": len(nodes), "top1_drop_points": drop})
            if drop <= inputs.max_drop:
                break
        path = onnx_export.save(candidate, Path(target) / onnx_export.MODEL_FILE, "int8", facts)
    return path, {"float_nodes": list(nodes), "onnx_diagnosis": diagnosis, "float_node_tries": tries}


def _openvino_accuracy_control(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
    import openvino as ov

    from edgecnn.export import openvino as openvino_export
    from edgecnn.export.telemetry import telemetry_disabled

    with telemetry_disabled(), openvino_export.squeeze_excite_quantised():  # as the plain int8 export does
        import nncf

        validation = list(zip(inputs.validation.images, inputs.validation.labels))
        quantized = nncf.quantize_with_accuracy_control(
            openvino_export.convert(inputs.model),
            nncf.Dataset(list(inputs.calibration), openvino_export.model_input),
            nncf.Dataset(validation, lambda item: openvino_export.model_input(item[0])),
            _openvino_top1,
            max_drop=inputs.max_drop / 100, drop_type=nncf.DropType.ABSOLUTE,
            **openvino_export.nncf_settings(nncf), subset_size=len(inputs.calibration),
        )
    path = Path(target) / openvino_export.MODEL_FILE
    ov.save_model(quantized, str(path), compress_to_fp16=False)
    return path, {}


def _openvino_top1(compiled_model, validation: Iterable[tuple[np.ndarray, int]]) -> tuple[float, list[float]]:
    """NNCF validation_fn: top-1 accuracy (the metric max_drop is in) and each image's correctness."""
    from edgecnn.export.openvino import model_input

    correct = [float(np.argmax(compiled_model(model_input(image))[0]) == label) for image, label in validation]
    return float(np.mean(correct)), correct


STRATEGIES: dict[str, tuple[Strategy, ...]] = {
    "tflite": (
        Strategy("larger_calibration", "int8", f"int8 calibrated on {LARGER_CALIBRATION_FACTOR}x the images",
                 _tflite_larger_calibration),
        Strategy("float_fallback", "int8", "int8 with the diagnosed layers left in float (QuantizationDebugger "
                 "denylisted_nodes; uint8 input and output)", _tflite_float_fallback),
        Strategy("int16x8", "int16x8", "16-bit activations, int8 weights", _tflite_int16x8),
    ),
    "onnx": (
        Strategy("entropy_calibration", "int8", "int8 QDQ with entropy calibration", _onnx_calibration("entropy")),
        Strategy("percentile_calibration", "int8", "int8 QDQ with percentile calibration",
                 _onnx_calibration("percentile")),
        Strategy("float_fallback", "int8", "int8 QDQ with the nodes of the activations int8 hurts most (float vs "
                 "QDQ activations, onnxruntime qdq_loss_debug) in nodes_to_exclude, worst first, until within "
                 "max_drop", _onnx_float_fallback),
    ),
    "openvino": (
        Strategy("nncf_accuracy_control", "int8", "nncf.quantize_with_accuracy_control on the validation split: "
                 "layers back to float, most harmful first, until within max_drop", _openvino_accuracy_control),
    ),
}
CONTROLLED_PRECISIONS = ("int8",)


def budget(format_name: str, precision: str, max_drop: float | None) -> float | None:
    """The budget that applies to this export (None for precisions not controlled); ValueError for no strategies."""
    if max_drop is None or precision not in CONTROLLED_PRECISIONS:
        return None
    if format_name not in STRATEGIES:
        raise ValueError(
            f"accuracy control (max_drop={max_drop}) has strategies for {', '.join(STRATEGIES)} {precision} exports; "
            f"got format {format_name!r}"
        )
    return max_drop


def control(
    first: Manifest,
    bundle: Path,
    build: BundleBuilder,
    inputs: QuantisationInputs,
    max_drop: float,
) -> Manifest:
    """Keep `bundle` if its top-1 drop is within `max_drop` points, else replace it with the first strategy that is.

    Records the diagnosis and every attempt in the kept manifest's checks["accuracy_control"]; raises
    AccuracyBudgetError listing the attempts if no strategy meets the budget.
    """
    attempts = [_attempt("baseline", first.precision, "the requested export", first, max_drop, {})]
    record = {"max_drop_points": max_drop, "requested_precision": first.precision, "attempts": attempts}
    kept, kept_dir = first, bundle
    with tempfile.TemporaryDirectory(prefix=".attempts-", dir=bundle.parent) as scratch:
        if not attempts[0]["meets_budget"]:
            diagnosis = diagnose(inputs.model, inputs.calibration)
            record["diagnosis"] = diagnosis
            record["diagnosis_by"] = "TFLite QuantizationDebugger on the same Keras model and calibration images"
            inputs = replace(inputs, max_drop=max_drop, culprits=culprits(diagnosis))
            kept = None
            for strategy in STRATEGIES[first.format]:
                target = Path(scratch) / strategy.name
                facts: dict = {}

                def export(directory: Path, strategy: Strategy = strategy, facts: dict = facts) -> Path:
                    path, found = strategy.export(inputs, directory)
                    facts.update(found)
                    return path

                try:
                    manifest = build(target, export, strategy.precision)
                except Exception as exc:  # a converter refusing one remedy (an op without a kernel) is a result
                    attempts.append({"strategy": strategy.name, "precision": strategy.precision,
                                     "description": strategy.description, "meets_budget": False,
                                     "error": f"{type(exc).__name__}: {exc}"[:500]})
                    continue
                attempts.append(_attempt(strategy.name, strategy.precision, strategy.description, manifest,
                                         max_drop, facts))
                if attempts[-1]["meets_budget"]:
                    kept, kept_dir = manifest, target
                    break
        if kept is None:
            raise AccuracyBudgetError(
                f"{first.name}: no export kept validation top-1 within {max_drop} points of Keras; tried:\n"
                + attempts_table(attempts) + "\nworst int8 layers: "
                + ", ".join(f"{layer['keras_layer'] or layer['tensor']} ({layer['noise_to_signal']:.2f})"
                            for layer in record.get("diagnosis", [])[:3])
            )
        record["kept"] = attempts[-1]["strategy"]
        if "calibration_images" in attempts[-1]:
            kept.checks["calibration_images"] = attempts[-1]["calibration_images"]
        kept.checks["accuracy_control"] = record
        write_manifest(kept_dir, kept)
        if kept_dir != bundle:
            shutil.rmtree(bundle)
            shutil.move(str(kept_dir), str(bundle))
    return kept


def _attempt(name: str, precision: str, description: str, manifest: Manifest, max_drop: float, facts: dict) -> dict:
    drop = manifest.checks["parity"]["top1_drop_points"]
    return {
        "strategy": name, "precision": precision, "description": description, "top1_drop_points": drop,
        "export_top1": manifest.checks["parity"]["export_top1"], "size_bytes": manifest.size_bytes,
        "meets_budget": bool(drop <= max_drop), **facts,
    }


def attempts_table(attempts: list[dict]) -> str:
    """The attempts as aligned text rows: strategy, precision, top-1 drop, size, verdict."""
    lines = [f"  {'strategy':<24} {'precision':<9} {'drop pt':>8} {'size KB':>8}  verdict"]
    for attempt in attempts:
        head = f"  {attempt['strategy']:<24} {attempt['precision']:<9}"
        if "error" in attempt:
            lines.append(f"{head} {'-':>8} {'-':>8}  failed: {attempt['error'].splitlines()[0]}")
            continue
        verdict = "within budget" if attempt["meets_budget"] else "over budget"
        lines.append(
            f"{head} {attempt['top1_drop_points']:>+8.2f} {attempt['size_bytes'] / 1e3:>8.1f}  {verdict}"
        )
    return "\n".join(lines)

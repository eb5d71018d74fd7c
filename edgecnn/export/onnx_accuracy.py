"""ONNX accuracy control: entropy and percentile calibration, then the nodes int8 hurts most left in float, found by
comparing float and QDQ activations with onnxruntime's qdq_loss_debug. TensorFlow Lite is never imported."""

from __future__ import annotations

import functools
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgecnn.errors import ExportError
from edgecnn.export import onnx as onnx_export
from edgecnn.export.checks import keras_probabilities, parity_checks
from edgecnn.export.control import QuantisationInputs, Remedy, noise_to_signal

# Calibration images whose float and int8 activations are compared (every intermediate tensor of both models is
# kept in memory), and the most harmful activations the float fallback leaves in float, one more per attempt.
DIAGNOSIS_IMAGES = 8
MAX_FLOAT_ACTIVATIONS = 4


def diagnose(inputs: QuantisationInputs) -> None:
    """None: ONNX's float fallback diagnoses the QDQ graph it builds itself (no separate diagnosis up front)."""
    return None


def diagnose_onnx(prepared: Path, quantized: Path, images: np.ndarray, scratch: Path, top: int) -> list[dict]:
    """The activations of an ONNX QDQ model that int8 hurts most, worst first, with the nodes to leave in float.

    onnxruntime's qdq_loss_debug runs the float and the QDQ graph on the same images and matches their activations;
    each one's error is `noise_to_signal` of the QDQ value against the float one. That error accumulates downstream,
    so activations are ranked by the error they add over the worst input of the node that makes them.
    """
    onnx = onnx_export._require("onnx")
    qdq_loss_debug = onnx_export._require("onnxruntime.quantization.qdq_loss_debug")

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


def _calibration(method: str):
    def export(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
        options = {**inputs.options, "calibration_method": method}
        return onnx_export.export(inputs.model, "int8", inputs.calibration, target, **options), {
            "calibration_method": method
        }

    return export


def _float_fallback(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
    """int8 QDQ with the worst activations' nodes in `nodes_to_exclude`, one more activation per try until within
    budget (measured on the validation split like the pipeline's parity check) or MAX_FLOAT_ACTIVATIONS."""
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
            prepared, candidate, inputs.calibration[:DIAGNOSIS_IMAGES], scratch, MAX_FLOAT_ACTIVATIONS
        )
        if not diagnosis:
            raise ExportError(f"{prepared.name}: no int8 activation to leave in float (no node makes one)")
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


REMEDIES: tuple[Remedy, ...] = (
    Remedy("entropy_calibration", "int8", "int8 QDQ with entropy calibration", _calibration("entropy")),
    Remedy("percentile_calibration", "int8", "int8 QDQ with percentile calibration", _calibration("percentile")),
    Remedy("float_fallback", "int8", "int8 QDQ with the nodes of the activations int8 hurts most (float vs QDQ "
           "activations, onnxruntime qdq_loss_debug) in nodes_to_exclude, worst first, until within max_drop",
           _float_fallback),
)

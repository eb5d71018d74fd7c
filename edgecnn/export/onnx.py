"""ONNX export: SavedModel → tf2onnx (opset 17); int8 = static QDQ quantisation with onnxruntime.quantization."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

from edgecnn.export.backend import require_tensorflow_backend
from edgecnn.export.calibration import require_calibration
from edgecnn.export.savedmodel import SIGNATURE, write_saved_model

MODEL_FILE = "model.onnx"
OPSET = 17
OUTPUT_NAME = "probabilities"  # the input keeps the SavedModel signature's name, "image"
INSTALL_HINT = "pip install edgecnn[export]"

# Calibration method name → onnxruntime.quantization.CalibrationMethod member. MinMax keeps every activation
# in range (what TFLite's converter does); entropy and percentile clip outliers, which can help wide ranges.
CALIBRATION_METHODS: dict[str, str] = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}

# Keys of the model's metadata_props that describe() copies into bundle.json.
METADATA_PREFIX = "edgecnn."


def _require(module: str) -> ModuleType:
    """Import a converter package, or fail naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"ONNX export needs the {module!r} package: {INSTALL_HINT}") from exc


class _CalibrationImages:
    """onnxruntime CalibrationDataReader over uint8 images: one float32 (1, H, W, 3) batch per get_next()."""

    def __init__(self, input_name: str, images: np.ndarray):
        self._input_name = input_name
        self._images = images
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._images):
            return None
        image = self._images[self._next]
        self._next += 1
        return {self._input_name: image[None].astype(np.float32)}


def _float32(float_model: Path, target: Path, calibration_images: np.ndarray | None, calibration_method: str) -> dict:
    """No quantisation: the converted graph is the reference export."""
    shutil.copyfile(float_model, target)
    return {}


def _int8(float_model: Path, target: Path, calibration_images: np.ndarray | None, calibration_method: str) -> dict:
    """Static QDQ: per-channel int8 weights, int8 activations calibrated on training images; float32 in and out."""
    require_calibration(calibration_images)
    onnx = _require("onnx")
    quantization = _require("onnxruntime.quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # Pre-processing folds constants and fuses Conv+BN/Mul/Add first, so fewer tensors get their own scale.
    prepared = target.with_name("prepared.onnx")
    quant_pre_process(str(float_model), str(prepared))
    input_name = onnx.load(str(prepared), load_external_data=False).graph.input[0].name
    quantization.quantize_static(
        str(prepared),
        str(target),
        _CalibrationImages(input_name, calibration_images),
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=True,
        activation_type=quantization.QuantType.QInt8,
        weight_type=quantization.QuantType.QInt8,
        calibrate_method=getattr(quantization.CalibrationMethod, CALIBRATION_METHODS[calibration_method]),
    )
    return {"calibration_method": calibration_method}


PRECISIONS: dict[str, Callable[[Path, Path, np.ndarray | None, str], dict]] = {
    "float32": _float32,
    "int8": _int8,
}


def convert_float32(model, path: Path) -> Path:
    """Write `model` as a float32 ONNX graph at `path`: its SavedModel signature, static batch 1, NHWC 0..255."""
    require_tensorflow_backend()
    import tensorflow as tf

    tf2onnx = _require("tf2onnx")
    with tempfile.TemporaryDirectory(prefix="edgecnn-savedmodel-") as tmp:
        saved = write_saved_model(model, Path(tmp) / "saved_model")
        loaded = tf.saved_model.load(str(saved))
        signature = loaded.signatures[SIGNATURE]
        input_specs = list(signature.structured_input_signature[1].values())
        proto, _ = tf2onnx.convert.from_function(getattr(loaded, SIGNATURE), input_signature=input_specs, opset=OPSET)
    _canonicalise(proto.graph)
    _require("onnx").save(proto, str(path))
    return path


def _canonicalise(graph) -> None:
    """Name nodes and internal tensors by graph position and sort the initializers: same model, same bytes.

    tf2onnx names the nodes it inserts from a process-wide counter, TensorFlow uniquifies names per trace,
    initializer order follows set iteration and the doc string names the traced function, so two conversions of
    one model differ in everything but the maths.
    """
    import copy

    onnx = _require("onnx")
    graph.doc_string = f"edgecnn: SavedModel signature {SIGNATURE!r} converted by tf2onnx"
    if any(
        attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for node in graph.node
        for attribute in node.attribute
    ):
        return  # subgraphs see outer names; a CNN classifier has none, and renaming them is not worth the risk
    initializers = {tensor.name for tensor in graph.initializer}
    renamed = {output.name: OUTPUT_NAME for output in graph.output} if len(graph.output) == 1 else {}
    for index, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{index}"
        for position, name in enumerate(node.input):
            if name in initializers and name not in renamed:
                renamed[name] = f"{node.name}.input{position}"
        for position, name in enumerate(node.output):
            if name and name not in renamed:
                renamed[name] = f"{node.name}.output{position}"
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    for value in (*graph.output, *graph.value_info, *graph.initializer):
        value.name = renamed.get(value.name, value.name)
    ordered = [copy.deepcopy(tensor) for tensor in sorted(graph.initializer, key=lambda tensor: tensor.name)]
    del graph.initializer[:]
    graph.initializer.extend(ordered)


def export(
    model,
    precision: str,
    calibration_images: np.ndarray | None,
    bundle_dir: Path,
    calibration_method: str = "minmax",
) -> Path:
    """Write `bundle_dir/model.onnx` at `precision` (float32, int8) and return its path."""
    if precision not in PRECISIONS:
        raise ValueError(f"ONNX precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if calibration_method not in CALIBRATION_METHODS:
        raise ValueError(
            f"ONNX calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got {calibration_method!r}"
        )
    onnx = _require("onnx")
    path = Path(bundle_dir) / MODEL_FILE
    with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as tmp:
        float_model = convert_float32(model, Path(tmp) / "float32.onnx")
        target = Path(tmp) / MODEL_FILE
        facts = PRECISIONS[precision](float_model, target, calibration_images, calibration_method)
        proto = onnx.load(str(target))
    onnx.helper.set_model_props(
        proto, {f"{METADATA_PREFIX}{key}": value for key, value in {"precision": precision, **facts}.items()}
    )
    onnx.save(proto, str(path))
    return path


def describe(model_path: str | Path) -> dict:
    """Op facts recorded in bundle.json: op types with their node counts, opset, and how the model was quantised."""
    onnx = _require("onnx")
    proto = onnx.load(str(model_path), load_external_data=False)
    counts = Counter(node.op_type for node in proto.graph.node)
    opsets = {entry.domain or "ai.onnx": entry.version for entry in proto.opset_import}
    metadata = {
        prop.key.removeprefix(METADATA_PREFIX): prop.value
        for prop in proto.metadata_props
        if prop.key.startswith(METADATA_PREFIX)
    }
    return {
        "ops": sorted(counts),
        "op_counts": dict(sorted(counts.items())),
        "op_count": sum(counts.values()),
        "opset": opsets.get("ai.onnx"),
        "onnx_metadata": metadata,
    }

"""ONNX export: SavedModel → tf2onnx (opset 17); int8 = static QDQ quantisation with onnxruntime.quantization."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from edgecnn.errors import ExportError, require
from edgecnn.export.backend import require_tensorflow_backend
from edgecnn.export.calibration import require_calibration
from edgecnn.export.savedmodel import SIGNATURE, write_saved_model
from edgecnn.formats import FORMATS, check_target

MODEL_FILE = FORMATS["onnx"].model_file
OPSET = 17
OUTPUT_NAME = "probabilities"  # the input keeps the SavedModel signature's name, "image"
INSTALL_HINT = "pip install edgecnn[export]"

# Calibration method name → onnxruntime.quantization.CalibrationMethod member. MinMax keeps every activation
# in range (what TFLite's converter does); entropy and percentile clip outliers, which can help wide ranges.
CALIBRATION_METHODS: dict[str, str] = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}

# Activation type name → onnxruntime.quantization.QuantType member; weights are always QInt8, per channel.
ACTIVATION_TYPES: dict[str, str] = {"uint8": "QUInt8", "int8": "QInt8"}
# uint8 activations (ORT's U8S8 kernels) by default: faster than int8 ones on x86 in every measurement
# (benchmarks/export_formats.py has both activation types as rows; figures in benchmarks/RESULTS.md).
# ORT's docs warn that x86 CPUs without VNNI run U8S8 with VPMADDUBSW, whose 16-bit sums can saturate (ORT turns
# S8S8 into U8S8 there too). On such an AVX2-only machine both activation types lost agreement with Keras on small
# models until weights were quantised to 7 bits (`reduce_range`, ORT's remedy), so that is the default.
ACTIVATION_TYPE = "uint8"

# Keys of the model's metadata_props that describe() copies into bundle.json.
METADATA_PREFIX = "edgecnn."


def _require(module: str) -> ModuleType:
    """Import a converter package, or fail naming the extra that provides it."""
    return require(module, "ONNX export", INSTALL_HINT)


class CalibrationImages:
    """onnxruntime CalibrationDataReader over uint8 images: one float32 (1, H, W, 3) batch per get_next() or step."""

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

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:  # what qdq_loss_debug.collect_activations reads
        while (batch := self.get_next()) is not None:
            yield batch


def input_name(model_path: Path) -> str:
    """The name of the model's image input."""
    return _require("onnx").load(str(model_path), load_external_data=False).graph.input[0].name


@dataclass(frozen=True)
class Int8Settings:
    """How int8 quantises: calibration method, activation type, and the nodes left in float."""

    calibration_method: str = "minmax"
    activation_type: str = ACTIVATION_TYPE
    nodes_to_exclude: tuple[str, ...] = ()
    reduce_range: bool = True

    def __post_init__(self) -> None:
        if self.calibration_method not in CALIBRATION_METHODS:
            raise ExportError(
                f"ONNX calibration method must be one of {', '.join(CALIBRATION_METHODS)}, "
                f"got {self.calibration_method!r}"
            )
        if self.activation_type not in ACTIVATION_TYPES:
            raise ExportError(
                f"ONNX activation type must be one of {', '.join(ACTIVATION_TYPES)}, got {self.activation_type!r}"
            )

    def facts(self) -> dict[str, str]:
        """The settings as model metadata (strings); the excluded nodes only when there are some."""
        facts = {"calibration_method": self.calibration_method, "activation_type": self.activation_type,
                 "reduce_range": str(self.reduce_range).lower()}
        if self.nodes_to_exclude:
            facts["nodes_to_exclude"] = ",".join(self.nodes_to_exclude)
        return facts


def prepare(float_model: Path, prepared: Path) -> Path:
    """The graph quantisation reads: constants folded, Conv+BN/Mul/Add fused, so fewer tensors get their own scale.

    Node names of the result are stable, which `Int8Settings.nodes_to_exclude` relies on.
    """
    _require("onnxruntime.quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(float_model), str(prepared))
    return prepared


def quantize(prepared: Path, target: Path, calibration_images: np.ndarray, settings: Int8Settings) -> dict:
    """Static QDQ of a `prepare`d graph into `target`: per-channel int8 weights, calibrated activations; the facts."""
    quantization = _require("onnxruntime.quantization")
    quantization.quantize_static(
        str(prepared),
        str(target),
        CalibrationImages(input_name(prepared), calibration_images),
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=True,
        activation_type=getattr(quantization.QuantType, ACTIVATION_TYPES[settings.activation_type]),
        weight_type=quantization.QuantType.QInt8,
        calibrate_method=getattr(quantization.CalibrationMethod, CALIBRATION_METHODS[settings.calibration_method]),
        reduce_range=settings.reduce_range,
        nodes_to_exclude=list(settings.nodes_to_exclude),
    )
    return settings.facts()


def _float32(float_model: Path, target: Path, calibration_images: np.ndarray | None, settings: Int8Settings) -> dict:
    """No quantisation: the converted graph is the reference export."""
    shutil.copyfile(float_model, target)
    return {}


def _int8(float_model: Path, target: Path, calibration_images: np.ndarray | None, settings: Int8Settings) -> dict:
    """Static QDQ: per-channel int8 weights, 8-bit activations calibrated on training images; float32 in and out."""
    require_calibration(calibration_images)
    return quantize(prepare(float_model, target.with_name("prepared.onnx")), target, calibration_images, settings)


CONVERSIONS: dict[str, Callable[[Path, Path, np.ndarray | None, Int8Settings], dict]] = {
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
    activation_type: str = ACTIVATION_TYPE,
    nodes_to_exclude: Sequence[str] = (),
    reduce_range: bool = True,
) -> Path:
    """Write `bundle_dir/model.onnx` at `precision` (float32, int8) and return its path.

    int8 only: `activation_type` (uint8, int8) and `nodes_to_exclude` (node names of the `prepare`d graph, left in
    float) are recorded in the model's metadata.
    """
    check_target("onnx", precision)
    settings = Int8Settings(calibration_method, activation_type, tuple(nodes_to_exclude), reduce_range)
    with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as tmp:
        float_model = convert_float32(model, Path(tmp) / "float32.onnx")
        target = Path(tmp) / MODEL_FILE
        facts = CONVERSIONS[precision](float_model, target, calibration_images, settings)
        return save(target, Path(bundle_dir) / MODEL_FILE, precision, facts)


def save(model_path: Path, path: Path, precision: str, facts: dict[str, str]) -> Path:
    """Copy the model at `model_path` to `path` with its precision and facts in metadata_props (read by describe)."""
    onnx = _require("onnx")
    proto = onnx.load(str(model_path))
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

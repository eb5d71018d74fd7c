"""The format table: every export format's files, precisions, options, exporter and runtime backend. A leaf.

Config validation, export, the device runtime, the CLI and the benchmarks all read this table; nothing else lists
formats, precisions or model-file suffixes. Adding a format means adding a row here, an exporter module with
`export(model, precision, calibration_images, bundle_dir, **options)` and a runtime backend with `open_model`.
TensorFlow-free (pydantic only), so the device side can import it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edgecnn.errors import ExportError

# Precisions whose activation ranges are calibrated on training images.
CALIBRATED_PRECISIONS: tuple[str, ...] = ("int8", "int16x8")


class FormatOptions(BaseModel):
    """Base of a format's recipe options (recipe: export.<format>)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TFLiteOptions(FormatOptions):
    """Options of the TFLite export (recipe: export.tflite)."""

    int8_io: Literal["uint8", "int8"] = Field(
        "uint8", description="input/output type of full-integer bundles: uint8 takes pixels as they are; int8 for "
        "accelerators and toolchains that require signed tensors (the runtime shifts pixels by 128)",
    )


class ONNXOptions(FormatOptions):
    """Options of the ONNX int8 export (recipe: export.onnx)."""

    activation_type: Literal["uint8", "int8"] = Field(
        "uint8", description="int8 QDQ activation type; uint8 is faster on x86 with VNNI (benchmarks/RESULTS.md), "
        "int8 for CPUs without VNNI where uint8 activations can saturate",
    )
    calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    reduce_range: bool = Field(
        True, description="7-bit weights: x86 CPUs without VNNI (AVX2 only) run int8 products with 16-bit sums "
        "that saturate on full-range weights (ONNX Runtime's documented remedy); false keeps 8-bit weights for "
        "VNNI and ARM targets",
    )


@dataclass(frozen=True)
class FormatSpec:
    """One export format: what its bundle holds, what it supports, and which modules implement it."""

    name: str
    model_file: str  # the file name inside a bundle; its suffix selects the runtime backend
    sidecars: tuple[str, ...]  # suffixes of files that belong to the model file (OpenVINO weights: .bin)
    precisions: tuple[str, ...]
    qat_precisions: tuple[str, ...]  # precisions converted from the run's quantisation-aware model, when it has one
    controlled_precisions: tuple[str, ...]  # precisions accuracy control (max_drop) applies to
    exporter: str  # export-side module (imports TensorFlow)
    accuracy: str | None  # export-side module with `diagnose` and `REMEDIES` for accuracy control
    backend: str  # runtime module with open_model(path, threads)
    runtime: str  # the runtime, for people
    install: str  # how a device gets the runtime
    options: type[FormatOptions] | None
    description: str

    @property
    def suffix(self) -> str:
        return Path(self.model_file).suffix

    def load(self) -> ModuleType:
        """Import the exporter (it may import TensorFlow)."""
        return importlib.import_module(self.exporter)

    def load_accuracy(self) -> ModuleType:
        """Import the accuracy-control module (diagnosis and ordered remedies)."""
        if self.accuracy is None:
            raise ExportError(f"format {self.name!r} has no accuracy control")
        return importlib.import_module(self.accuracy)

    def load_backend(self) -> ModuleType:
        """Import the runtime backend (TensorFlow-free)."""
        return importlib.import_module(self.backend)


FORMATS: dict[str, FormatSpec] = {
    "tflite": FormatSpec(
        name="tflite",
        model_file="model.tflite",
        sidecars=(),
        precisions=("float32", "float16", "dynamic", "int8", "int16x8"),
        qat_precisions=("int8",),
        controlled_precisions=("int8",),
        exporter="edgecnn.export.tflite",
        accuracy="edgecnn.export.tflite_accuracy",
        backend="edgecnn.runtime.backends.litert",
        runtime="LiteRT (ai_edge_litert / tflite_runtime)",
        install="pip install edgecnn",
        options=TFLiteOptions,
        description="TensorFlow Lite flatbuffer for LiteRT (built-in ops only)",
    ),
    "onnx": FormatSpec(
        name="onnx",
        model_file="model.onnx",
        sidecars=(),
        precisions=("float32", "int8"),
        qat_precisions=(),
        controlled_precisions=("int8",),
        exporter="edgecnn.export.onnx",
        accuracy="edgecnn.export.onnx_accuracy",
        backend="edgecnn.runtime.backends.onnxruntime",
        runtime="ONNX Runtime (onnxruntime)",
        install="pip install edgecnn[onnxruntime]",
        options=ONNXOptions,
        description="ONNX (opset 17) for ONNX Runtime; int8 = static QDQ via onnxruntime.quantization",
    ),
    "openvino": FormatSpec(
        name="openvino",
        model_file="model.xml",
        sidecars=(".bin",),
        precisions=("float32", "float16", "int8"),
        qat_precisions=(),
        controlled_precisions=("int8",),
        exporter="edgecnn.export.openvino",
        accuracy="edgecnn.export.openvino_accuracy",
        backend="edgecnn.runtime.backends.openvino",
        runtime="OpenVINO Runtime (openvino)",
        install="pip install edgecnn[openvino]",
        options=None,
        description="OpenVINO IR (.xml + .bin); int8 via nncf.quantize",
    ),
}

ALL_PRECISIONS: tuple[str, ...] = tuple(dict.fromkeys(p for spec in FORMATS.values() for p in spec.precisions))


def get_format(name: str) -> FormatSpec:
    """The spec of format `name`, or an ExportError listing the known formats."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ExportError(f"unknown export format {name!r}; available: {', '.join(FORMATS)}") from None


def check_target(format_name: str, precision: str) -> FormatSpec:
    """The format's spec, or an ExportError unless `precision` is one it supports."""
    spec = get_format(format_name)
    if precision not in spec.precisions:
        raise ExportError(
            f"format {format_name!r} supports precisions {', '.join(spec.precisions)}; got {precision!r}"
        )
    return spec


def format_of_model_file(path: str | Path) -> FormatSpec | None:
    """The format whose model file has `path`'s suffix, or None."""
    suffix = Path(path).suffix.lower()
    return next((spec for spec in FORMATS.values() if spec.suffix == suffix), None)


def model_files(model_path: str | Path) -> list[Path]:
    """The model file and the sidecar files its format keeps beside it (those that exist)."""
    model_path = Path(model_path)
    spec = format_of_model_file(model_path)
    sidecars = [model_path.with_suffix(suffix) for suffix in (spec.sidecars if spec else ())]
    return [model_path, *(path for path in sidecars if path.is_file())]


def size_bytes(model_path: str | Path) -> int:
    """Bytes on disk of a model file with its sidecars: what a bundle's size_bytes records."""
    return sum(path.stat().st_size for path in model_files(model_path))

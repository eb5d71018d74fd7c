"""The table of export formats: name, file suffix, precisions, implementing module. TensorFlow-free.

The CLI validates `--format/--precision` against it, recipes are validated against it, and benchmarks iterate
it; adding a format means adding a row and a module with `export(model, precision, calibration_images, dir)`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class FormatSpec:
    name: str
    suffix: str
    precisions: tuple[str, ...]
    module: str
    description: str

    def load(self) -> ModuleType:
        """Import the module that implements this format (it may import TensorFlow)."""
        return importlib.import_module(self.module)


FORMATS: dict[str, FormatSpec] = {
    "tflite": FormatSpec(
        name="tflite",
        suffix=".tflite",
        precisions=("float32", "float16", "dynamic", "int8", "int16x8"),
        module="edgecnn.export.tflite",
        description="TensorFlow Lite flatbuffer for LiteRT (built-in ops only)",
    ),
    "onnx": FormatSpec(
        name="onnx",
        suffix=".onnx",
        precisions=("float32", "int8"),
        module="edgecnn.export.onnx",
        description="ONNX (opset 17) for ONNX Runtime; int8 = static QDQ via onnxruntime.quantization",
    ),
    "openvino": FormatSpec(
        name="openvino",
        suffix=".xml",
        precisions=("float32", "float16", "int8"),
        module="edgecnn.export.openvino",
        description="OpenVINO IR (.xml + .bin); int8 via nncf.quantize",
    ),
}


def get_format(name: str) -> FormatSpec:
    """The spec of format `name`, or a ValueError listing the known formats."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown export format {name!r}; available: {', '.join(FORMATS)}") from None


def check_target(format_name: str, precision: str) -> None:
    """Raise ValueError unless `precision` is supported by `format_name`."""
    spec = get_format(format_name)
    if precision not in spec.precisions:
        raise ValueError(
            f"format {format_name!r} supports precisions {', '.join(spec.precisions)}; got {precision!r}"
        )

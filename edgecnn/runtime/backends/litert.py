"""LiteRT backend: `ai_edge_litert`, falling back to the older `tflite_runtime` wheel (e.g. on 32-bit Pi OS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.runtime.bundle import BundleError
from edgecnn.runtime.quant import dequantize, quantize


def _interpreter_class() -> tuple[type, str]:
    try:
        from ai_edge_litert import interpreter as litert

        return litert.Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as tflite_runtime
    except ImportError as exc:
        raise ImportError(
            "no LiteRT runtime found: install `ai-edge-litert` (or `tflite-runtime` on older devices)"
        ) from exc
    return tflite_runtime.Interpreter, "tflite_runtime"


def _package_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in (package.replace("_", "-"), package):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "unknown"


class LiteRTBackend:
    """One TFLite model under a LiteRT interpreter with a static batch of 1."""

    def __init__(self, model_path: Path, threads: int | None = None):
        interpreter_class, self._package = _interpreter_class()
        try:
            self._interpreter = interpreter_class(model_path=str(model_path), num_threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise BundleError(f"{model_path}: not a valid TFLite model ({exc})") from exc
        try:
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            # The file parsed, but a kernel refused its tensors (e.g. int16x8 ranges that overflow a kernel).
            raise BundleError(f"{model_path}: LiteRT could not prepare this model's ops ({exc})") from exc
        self._threads = threads
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        shape = self._input["shape"]
        if len(shape) != 4 or shape[3] != 3:
            raise BundleError(f"{model_path}: expected an image input (1, H, W, 3), got shape {tuple(shape)}")

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self._input["shape"][1]), int(self._input["shape"][2])

    def run(self, image: np.ndarray) -> np.ndarray:
        tensor = quantize(image, self._input["dtype"], self._input["quantization"])
        self._interpreter.set_tensor(self._input["index"], tensor)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._output["index"])
        return dequantize(raw, self._output["quantization"])[0]

    def info(self) -> dict[str, Any]:
        return {
            "backend": "litert",
            "package": f"{self._package} {_package_version(self._package)}",
            "threads": self._threads,
            "input_dtype": np.dtype(self._input["dtype"]).name,
            "output_dtype": np.dtype(self._output["dtype"]).name,
            "input_quantization": [float(v) for v in self._input["quantization"]],
        }


def open_model(model_path: Path, threads: int | None = None) -> LiteRTBackend:
    return LiteRTBackend(model_path, threads=threads)

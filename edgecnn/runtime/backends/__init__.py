"""Runtime backends, looked up by model file suffix. Imported lazily so a device needs only its own runtime."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Backend(Protocol):
    """What every runtime backend offers the Predictor."""

    def run(self, image: np.ndarray) -> np.ndarray:
        """Run one uint8 RGB image (1, H, W, 3) and return float32 probabilities (num_classes,)."""

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the model expects."""

    def info(self) -> dict[str, Any]:
        """Backend name and version, threads, tensor dtypes, precision facts."""


@dataclass(frozen=True)
class BackendEntry:
    suffix: str
    module: str
    description: str


BACKENDS: dict[str, BackendEntry] = {
    ".tflite": BackendEntry(".tflite", "edgecnn.runtime.backends.litert", "LiteRT (ai_edge_litert / tflite_runtime)"),
    ".onnx": BackendEntry(".onnx", "edgecnn.runtime.backends.onnxruntime", "ONNX Runtime (onnxruntime)"),
    ".xml": BackendEntry(".xml", "edgecnn.runtime.backends.openvino", "OpenVINO Runtime (openvino)"),
}


def open_backend(model_path: Path, threads: int | None) -> Backend:
    """Open `model_path` with the backend registered for its suffix."""
    entry = BACKENDS.get(model_path.suffix.lower())
    if entry is None:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"{model_path}: no runtime backend for suffix {model_path.suffix!r}; known: {known}")
    module = importlib.import_module(entry.module)
    return module.open_model(model_path, threads=threads)

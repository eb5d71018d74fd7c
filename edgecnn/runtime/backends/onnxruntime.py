"""ONNX Runtime backend: one `.onnx` model in an InferenceSession on the CPU execution provider."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edgecnn.errors import BundleError, require
from edgecnn.formats import FORMATS
from edgecnn.runtime.quant import quantize

PROVIDERS = ["CPUExecutionProvider"]

# ONNX tensor type strings (NodeArg.type) → numpy dtypes an image input or a probability output can have.
DTYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int8)": np.dtype(np.int8),
}


def _onnxruntime() -> ModuleType:
    return require("onnxruntime", "the ONNX backend", FORMATS["onnx"].install)


def _load_errors(onnxruntime: ModuleType) -> tuple[type[Exception], ...]:
    """What InferenceSession raises for a file that is not a loadable model (none derive from RuntimeError)."""
    state = onnxruntime.capi.onnxruntime_pybind11_state
    return (
        state.Fail,
        state.InvalidArgument,
        state.InvalidProtobuf,
        state.InvalidGraph,
        state.NotImplemented,
        state.RuntimeException,
    )


def _dtype(model_path: Path, role: str, node: Any) -> np.dtype:
    if node.type not in DTYPES:
        raise BundleError(f"{model_path}: {role} {node.name!r} has type {node.type}; expected one of {sorted(DTYPES)}")
    return DTYPES[node.type]


class OnnxRuntimeBackend:
    """One ONNX image classifier with a static batch of 1, run by ONNX Runtime on the CPU."""

    def __init__(self, model_path: Path, threads: int | None = None):
        onnxruntime = _onnxruntime()
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or 0  # 0: ONNX Runtime's default, one thread per physical core
        try:
            self._session = onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=PROVIDERS)
        except _load_errors(onnxruntime) as exc:
            raise BundleError(f"{model_path}: not a valid ONNX model ({exc})") from exc
        self._version = onnxruntime.__version__
        self._threads = threads
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise BundleError(
                f"{model_path}: expected one image input and one probability output, got {len(inputs)} input(s) "
                f"and {len(outputs)} output(s)"
            )
        self._input, self._output = inputs[0], outputs[0]
        shape = tuple(self._input.shape)
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or not all(isinstance(d, int) for d in shape):
            raise BundleError(f"{model_path}: expected a static image input (1, H, W, 3), got shape {shape}")
        self._input_dtype = _dtype(model_path, "input", self._input)
        self._output_dtype = _dtype(model_path, "output", self._output)
        if self._output_dtype.kind != "f":
            raise BundleError(
                f"{model_path}: expected float probabilities as output, got {self._output.type} ({self._output.name!r})"
            )

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self._input.shape[1]), int(self._input.shape[2])

    @property
    def num_classes(self) -> int:
        dim = self._output.shape[-1]
        if isinstance(dim, int):
            return dim
        return int(self.run(np.zeros((1, *self.input_size, 3), np.uint8)).shape[-1])  # a symbolic dimension

    def run(self, image: np.ndarray) -> np.ndarray:
        # QDQ models keep a float input (quantisation happens inside the graph): no scale, a plain cast.
        tensor = quantize(image, self._input_dtype, (0.0, 0))
        (probabilities,) = self._session.run([self._output.name], {self._input.name: tensor})
        return probabilities[0].astype(np.float32, copy=False)

    def info(self) -> dict[str, Any]:
        return {
            "backend": "onnxruntime",
            "package": f"onnxruntime {self._version}",
            "providers": self._session.get_providers(),
            "threads": self._threads,
            "input_dtype": self._input_dtype.name,
            "output_dtype": self._output_dtype.name,
        }


def open_model(model_path: Path, threads: int | None = None) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(model_path, threads=threads)

"""LiteRT backend: `ai_edge_litert`, falling back to the older `tflite_runtime` wheel (e.g. on 32-bit Pi OS)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import BundleError, MissingDependencyError
from edgecnn.logs import native_stderr_silenced
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
        raise MissingDependencyError(
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
        # LiteRT logs "INFO: Created TensorFlow Lite XNNPACK delegate" natively on every load; errors still raise.
        with native_stderr_silenced():
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

    @property
    def num_classes(self) -> int:
        return int(self._output["shape"][-1])

    def run(self, image: np.ndarray) -> np.ndarray:
        tensor = quantize(image, self._input["dtype"], self._input["quantization"])
        self._interpreter.set_tensor(self._input["index"], tensor)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._output["index"])
        return dequantize(raw, self._output["quantization"])[0]

    def delegation(self) -> dict[str, Any]:
        """Which ops the CPU delegate (XNNPACK) took over and which stay on LiteRT's own kernels.

        After delegation the interpreter lists the model's original ops plus one DELEGATE op per partition. Walking
        back from the outputs through whichever node produces each tensor now (a partition's DELEGATE op wins over
        the original op) reaches exactly the execution plan: the original ops reached are the undelegated ones.
        """
        ops = self._interpreter._get_ops_details()
        partitions = [op for op in ops if op["op_name"] == "DELEGATE"]
        originals = [op for op in ops if op["op_name"] != "DELEGATE"]
        producer = {int(t): op for op in originals + partitions for t in op["outputs"]}
        reached: set[int] = set()
        seen: set[int] = set()
        pending = [int(detail["index"]) for detail in self._interpreter.get_output_details()]
        while pending:
            tensor = pending.pop()
            if tensor in seen or tensor not in producer:
                continue
            seen.add(tensor)
            node = producer[tensor]
            reached.add(int(node["index"]))
            pending.extend(int(t) for t in node["inputs"] if t >= 0)
        undelegated = Counter(op["op_name"] for op in originals if int(op["index"]) in reached)
        total = len(originals)
        return {
            "ops": total,
            "delegated": total - sum(undelegated.values()),
            "delegated_share": (total - sum(undelegated.values())) / total if total else 0.0,
            "partitions": sum(1 for op in partitions if int(op["index"]) in reached),
            "undelegated": dict(sorted(undelegated.items())),
        }

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

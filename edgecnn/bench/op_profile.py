"""The slowest ops of a bundle, from each runtime's own profiler (`edgecnn bench --per-op`). No TensorFlow.

ONNX Runtime: session profiling (a Chrome-trace JSON of every node's kernel time). OpenVINO: the CPU plugin's
performance counters (PERF_COUNT). LiteRT: the ai_edge_litert Python wheel exposes no op profiler (its Interpreter
takes no profiler and the C++ `benchmark_model --enable_op_profiling` is not shipped), so its report is the
execution plan after XNNPACK delegation, without times.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import require
from edgecnn.formats import FORMATS
from edgecnn.runtime.predictor import Predictor, load


def _rows(total_us: dict[str, float], kinds: dict[str, str], runs: int) -> list[dict[str, Any]]:
    whole = sum(total_us.values()) or 1.0
    rows = [
        {"op": name, "type": kinds.get(name, ""), "ms": us / runs / 1000, "share": us / whole}
        for name, us in total_us.items()
    ]
    return sorted(rows, key=lambda row: row["ms"], reverse=True)


def profile_onnxruntime(predictor: Predictor, image: np.ndarray, runs: int) -> dict[str, Any]:
    """Per-node kernel time from an ONNX Runtime session opened with profiling on."""
    onnxruntime = require("onnxruntime", "ONNX Runtime profiling", FORMATS["onnx"].install)
    from edgecnn.runtime.backends.onnxruntime import DTYPES, PROVIDERS

    with tempfile.TemporaryDirectory(prefix="edgecnn-ort-profile-") as scratch:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = predictor.info().get("threads") or 0
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(scratch) / "ort")
        session = onnxruntime.InferenceSession(str(predictor.path), sess_options=options, providers=PROVIDERS)
        node = session.get_inputs()[0]
        feed = {node.name: image.astype(DTYPES[node.type])}
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    total_us: dict[str, float] = defaultdict(float)
    kinds: dict[str, str] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            name = event["name"].removesuffix("_kernel_time")
            total_us[name] += float(event["dur"])
            kinds[name] = event.get("args", {}).get("op_name", "")
    return {"profiler": f"onnxruntime {onnxruntime.__version__} session profiling", "ops": _rows(total_us, kinds, runs)}


def profile_openvino(predictor: Predictor, image: np.ndarray, runs: int) -> dict[str, Any]:
    """Per-layer real time from the OpenVINO CPU plugin's performance counters, summed over `runs` inferences."""
    ov = require("openvino", "OpenVINO profiling", FORMATS["openvino"].install)
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": True}
    threads = predictor.info().get("threads")
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(predictor.path)), "CPU", config)
    request = compiled.create_infer_request()
    tensor = image.astype(compiled.input(0).get_element_type().to_dtype())
    total_us: dict[str, float] = defaultdict(float)
    kinds: dict[str, str] = {}
    for _ in range(runs):
        request.infer([tensor])
        for info in request.get_profiling_info():
            if info.status == info.Status.EXECUTED:
                total_us[info.node_name] += info.real_time.total_seconds() * 1e6
                kinds[info.node_name] = f"{info.node_type} ({info.exec_type})"
    return {"profiler": f"openvino {ov.__version__.split('-')[0]} PERF_COUNT", "ops": _rows(total_us, kinds, runs)}


def profile_litert(predictor: Predictor, image: np.ndarray, runs: int) -> dict[str, Any]:
    """LiteRT's execution plan after delegation (no op times: the Python wheel has no op profiler)."""
    delegation = predictor.backend.delegation()
    ops = [{"op": f"XNNPACK partition ×{delegation['partitions']}", "type": "DELEGATE", "ms": None, "share": None}]
    ops += [{"op": name, "type": f"undelegated ×{count}", "ms": None, "share": None}
            for name, count in delegation["undelegated"].items()]
    return {
        "profiler": None,
        "note": "the ai_edge_litert Python wheel exposes no op profiler; shown: the execution plan "
        f"({delegation['delegated']}/{delegation['ops']} ops delegated to XNNPACK)",
        "ops": ops,
    }


# format → its runtime's profiler.
PROFILERS: dict[str, Callable[[Predictor, np.ndarray, int], dict[str, Any]]] = {
    "tflite": profile_litert,
    "onnx": profile_onnxruntime,
    "openvino": profile_openvino,
}


def op_profile(predictor: Predictor, runs: int = 20) -> dict[str, Any]:
    """The bundle's ops, slowest first, from its runtime's profiler (after `runs` profiled inferences)."""
    image = np.random.default_rng(0).integers(0, 256, (1, *predictor.image_size, 3), dtype=np.uint8)
    return PROFILERS[predictor.manifest.format](predictor, image, runs)


def profile_bundle(path: str | Path, threads: int | None = None, runs: int = 20, verify: bool = True) -> dict:
    """Load a bundle and profile its ops: run by `edgecnn bench --per-op` in a fresh process of its own."""
    return op_profile(load(path, threads=threads, verify=verify), runs)


def format_profile(profile: dict[str, Any], top: int = 10) -> str:
    """The `top` slowest ops as text lines (or the execution plan where the runtime has no profiler)."""
    lines = [f"  {profile['profiler'] or profile.get('note', '')}"]
    for row in profile["ops"][:top]:
        if row["ms"] is None:
            lines.append(f"    {row['op']:<48} {row['type']}")
        else:
            lines.append(f"    {row['op'][:48]:<48} {row['type'][:28]:<28} {row['ms']:>8.4f} ms {row['share']:>6.1%}")
    return "\n".join(lines)

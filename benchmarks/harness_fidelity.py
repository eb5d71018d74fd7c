"""Harness fidelity: `edgecnn bench` p50 against the runtimes' own benchmark tools on the same files.

LiteRT: `litert-benchmark` (shipped in the ai-edge-litert wheel: the CompiledModel API, median of timed runs).
OpenVINO: `benchmark_app` (shipped with the openvino wheel: sync API, one request, one stream, f32 inference
precision as edgecnn's backend pins). Same model files, same threads; the two harnesses alternate round by round so
both see the same machine state, and each figure is the median over rounds. Untrained MobileNetV2 (speed only).
Usage: python benchmarks/harness_fidelity.py [--size 128] [--threads 1] [--rounds 11] [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402

from edgecnn.formats import FORMATS  # noqa: E402
from edgecnn.models import create, get  # noqa: E402
from edgecnn.runtime.bundle import new_manifest, write_manifest  # noqa: E402

BIN = Path(sys.executable).parent
TARGETS = [("tflite", "float32"), ("tflite", "int8"), ("openvino", "float32"), ("openvino", "int8")]


def export_bundles(size: int, root: Path) -> dict[tuple[str, str], Path]:
    """MobileNetV2 (untrained, 10 classes) exported to every target under root."""
    model = create("mobilenet_v2", num_classes=10, image_size=size)
    calibration = np.random.default_rng(0).integers(0, 256, (32, size, size, 3), dtype=np.uint8)
    bundles = {}
    for format_name, precision in TARGETS:
        spec = FORMATS[format_name]
        bundle = root / f"{format_name}-{precision}"
        bundle.mkdir()
        model_path = spec.load().export(model, precision, calibration, bundle)
        write_manifest(bundle, new_manifest(
            name=bundle.name, format_name=format_name, precision=precision, model_path=model_path,
            labels=[str(i) for i in range(10)], image_size=(size, size), resize="stretch",
            normalisation=get("mobilenet_v2").normalisation,
        ))
        bundles[(format_name, precision)] = bundle
    return bundles


def edgecnn_p50(bundle: Path, threads: int, runs: int) -> float:
    out = subprocess.run(
        [str(BIN / "edgecnn"), "bench", str(bundle), "--threads", str(threads), "--runs", str(runs),
         "--warmup", str(max(10, runs // 10)), "--json"], capture_output=True, text=True, check=True,
    ).stdout
    return float(json.loads(out)[0]["p50_ms"])


def litert_p50(bundle: Path, threads: int, runs: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        result = Path(scratch) / "result.json"
        subprocess.run(
            [str(BIN / "litert-benchmark"), f"--model={bundle / 'model.tflite'}", f"--num_runs={runs}",
             f"--warmup_runs={max(10, runs // 10)}", f"--num_threads={threads}", f"--result_json={result}"],
            capture_output=True, text=True, check=True,
        )
        return _find(json.loads(result.read_text()), "median_ms")


def benchmark_app_p50(bundle: Path, threads: int, runs: int) -> float:
    out = subprocess.run(
        [str(BIN / "benchmark_app"), "-m", str(bundle / "model.xml"), "-d", "CPU", "-hint", "none", "-nstreams", "1",
         "-api", "sync", "-nireq", "1", "-nthreads", str(threads), "-niter", str(runs), "-infer_precision", "f32"],
        capture_output=True, text=True, check=True,
    ).stdout
    match = re.search(r"Median:\s*([\d.]+)\s*(ms|us)", out)  # the unit follows the size of the figure
    if match is None:
        raise RuntimeError(f"no median in benchmark_app output:\n{out[-2000:]}")
    return float(match.group(1)) / (1000 if match.group(2) == "us" else 1)


def python_side_ms(bundle: Path, threads: int, runs: int) -> float:
    """Median of predict() wall time minus OpenVINO's own `InferRequest.latency` (the time benchmark_app reports)
    per call, in this process: what edgecnn's Python path (checks, widening into the input tensor, output copy)
    adds to one inference."""
    import time

    from edgecnn.runtime import load

    predictor = load(bundle, threads=threads)
    request = predictor.backend._request  # the backend's one request; a diagnostic, not an API
    batch = np.random.default_rng(0).integers(0, 256, (1, *predictor.image_size, 3), dtype=np.uint8)
    for _ in range(max(10, runs // 10)):
        predictor.predict(batch)
    extra = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        predictor.predict(batch)
        extra.append((time.perf_counter_ns() - started) / 1e6 - request.latency)
    return statistics.median(extra)


def _find(data: object, key: str) -> float:
    if isinstance(data, dict):
        if key in data:
            return float(data[key])
        for value in data.values():
            try:
                return _find(value, key)
            except KeyError:
                continue
    raise KeyError(key)


TOOLS = {"tflite": ("litert-benchmark", litert_p50), "openvino": ("benchmark_app", benchmark_app_p50)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    missing = [name for name, _ in TOOLS.values() if shutil.which(name, path=str(BIN)) is None]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        bundles = export_bundles(args.size, Path(tmp))
        samples: dict[tuple[str, str], dict[str, list[float]]] = {t: {"edgecnn": [], "tool": []} for t in bundles}
        loads = []
        for round_index in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for target, bundle in bundles.items():
                tool_name, tool = TOOLS[target[0]]
                if tool_name in missing:
                    continue
                pair = [("edgecnn", edgecnn_p50), ("tool", tool)]
                for name, measure in pair if round_index % 2 == 0 else pair[::-1]:  # alternate who goes first
                    samples[target][name].append(measure(bundle, args.threads, args.runs))
                print(target, {k: v[-1] for k, v in samples[target].items()}, flush=True)
        for (format_name, precision), measured in samples.items():
            tool_name = TOOLS[format_name][0]
            if not measured["tool"]:
                rows.append(f"| {format_name} {precision} | {tool_name} | - | - | - | - | - | tool not installed |")
                continue
            ours, theirs = statistics.median(measured["edgecnn"]), statistics.median(measured["tool"])
            ratio = ours / theirs
            paired = statistics.median(e / t for e, t in zip(measured["edgecnn"], measured["tool"]))
            python_ms = (f"{python_side_ms(bundles[(format_name, precision)], args.threads, args.runs):.3f}"
                         if format_name == "openvino" else "-")
            verdict = "within ±10 %" if abs(ratio - 1) <= 0.10 else "OUTSIDE ±10 %"
            rows.append(f"| {format_name} {precision} | {tool_name} | {ours:.3f} | {theirs:.3f} | {ratio:.3f} | "
                        f"{paired:.3f} | {python_ms} | {verdict} |")
    body = "\n".join([
        f"## Harness fidelity: `edgecnn bench` vs the runtimes' own tools (MobileNetV2 {args.size} px, untrained, "
        f"{args.threads} thread(s))",
        "",
        f"p50 ms: median over {args.rounds} interleaved rounds (order alternating) of each harness's median of "
        f"{args.runs} single-image runs on the same file. `edgecnn bench` times `predict()` through "
        "edgecnn.runtime (input quantisation and output dequantisation included); litert-benchmark times the "
        "CompiledModel API with its own buffers (median rounded to 0.01 ms by the tool); benchmark_app runs the "
        "sync API, one request, one stream (what the latency hint picks; benchmark_app takes -nthreads only "
        "without a hint), f32 inference precision; its figure is OpenVINO's own `InferRequest.latency` on an input "
        "filled once. ratio: of the two medians (the verdict); paired: median over rounds of each round's "
        "edgecnn / tool, taken back to back. Python ms (OpenVINO only, measured separately in one process): median "
        "of predict() wall time minus `InferRequest.latency` per call, i.e. what edgecnn's Python path adds. "
        f"Load average (1 min) over the rounds: {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores. "
        "`benchmarks/harness_fidelity.py`.",
        "",
        "| bundle | tool | edgecnn p50 ms | tool p50 ms | ratio | paired | Python ms | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---|",
        *rows,
    ])
    print(body)
    write_section("harness_fidelity", body)


if __name__ == "__main__":
    main()

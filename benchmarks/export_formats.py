"""Latency and size of every format × precision in the export table, for one architecture (untrained weights).

Speed only: accuracy needs a trained model (that is the export matrix's job). Each bundle is timed in a fresh
process at 2 threads after warm-up. Usage: python benchmarks/export_formats.py [--model mobilenet_v2] [--size 224]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402

from edgecnn.bench.latency import paired_ratio  # noqa: E402
from edgecnn.commands.bench import measure_isolated  # noqa: E402
from edgecnn.formats import FORMATS  # noqa: E402
from edgecnn.models import create, get  # noqa: E402
from edgecnn.runtime import load  # noqa: E402
from edgecnn.runtime.bundle import Manifest, write_manifest  # noqa: E402


def measure(model_name: str, size: int, threads: int, runs: int, root: Path) -> list[dict]:
    """Export `model_name` to every format × precision under `root` and time each bundle."""
    model = create(model_name, num_classes=1000, image_size=size)
    # Random pixels calibrate the quantisers: enough for timing, meaningless for accuracy.
    calibration = np.random.default_rng(0).integers(0, 256, (32, size, size, 3), dtype=np.uint8)
    rows = []
    for spec in FORMATS.values():
        for precision, label, options in _variants(spec.name, spec.precisions):
            bundle = root / f"{spec.name}-{label}".replace(" ", "_").replace("(", "").replace(")", "")
            bundle.mkdir()
            try:
                model_path = spec.load().export(model, precision, calibration, bundle, **options)
            except Exception as exc:  # a format that cannot export this model is a row, not a crash
                rows.append({"format": spec.name, "precision": label, "status": f"export failed: {exc}"[:80]})
                continue
            write_manifest(bundle, Manifest(
                name=bundle.name, format=spec.name, precision=precision, model_file=model_path.name,
                labels=[str(i) for i in range(1000)], input={"height": size, "width": size},
                preprocessing={"resize": "stretch", "normalisation": get(model_name).normalisation},
            ))
            model_files = [f for f in bundle.iterdir() if f.suffix in (".tflite", ".onnx", ".bin")]
            size_mb = sum(f.stat().st_size for f in model_files) / 2**20
            try:
                stats = measure_isolated(bundle, threads, runs, max(10, runs // 10))
            except Exception as exc:  # e.g. a runtime refusing the converted graph
                rows.append({"format": spec.name, "precision": label, "status": f"runtime failed: {exc}"[:160]})
                continue
            rows.append({"format": spec.name, "precision": label, "size_mb": size_mb, "bundle": bundle,
                         "p50_ms": stats.p50_ms, "p90_ms": stats.p90_ms, "status": "ok"})
            float32 = next((r for r in rows if r["format"] == spec.name and r["precision"] == "float32"
                            and "bundle" in r), None)
            if precision != "float32" and float32 is not None:
                reference = load(float32["bundle"], threads=threads)
                rows[-1]["paired"] = paired_ratio(load(bundle, threads=threads), reference)
            print(rows[-1], flush=True)
    return rows


def _variants(format_name: str, precisions: tuple[str, ...]) -> list[tuple[str, str, dict]]:
    """(precision, row label, export options): every precision, plus ONNX int8 with signed activations, the
    alternative to the default uint8 ones (export.onnx.activation_type)."""
    variants = [(precision, precision, {}) for precision in precisions]
    if format_name == "onnx":
        variants.append(("int8", "int8 (int8 activations)", {"activation_type": "int8"}))
    return variants


def report(model_name: str, size: int, threads: int, rows: list[dict]) -> str:
    float32 = {r["format"]: r["p50_ms"] for r in rows if r["precision"] == "float32" and "p50_ms" in r}
    lines = [
        f"## Export formats: `{model_name}` at {size} px (untrained, 1000 classes), {threads} threads",
        "",
        "Latency only (random calibration images). Each bundle timed in a fresh process; p50/p90 of single-image "
        "predict() through edgecnn.runtime. Interleaved: the bundle and its format's float32 bundle timed in "
        "alternating rounds in one process (median of per-round ratios), the figure to compare precisions by.",
        "",
        "| format | precision | size MB | p50 ms | p90 ms | p50 / float32 p50 | time / float32, interleaved |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "p50_ms" not in r:
            lines.append(f"| {r['format']} | {r['precision']} | – | – | – | – | {r['status']} |")
            continue
        ratio = r["p50_ms"] / float32[r["format"]] if r["format"] in float32 else float("nan")
        paired = f"{r['paired']:.2f}×" if "paired" in r else "–"
        lines.append(
            f"| {r['format']} | {r['precision']} | {r['size_mb']:.2f} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f} | "
            f"{ratio:.2f}× | {paired} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgecnn-formats-") as tmp:
        results = measure(args.model, args.size, args.threads, args.runs, Path(tmp))
    body = report(args.model, args.size, args.threads, results)
    print(body)
    print(f"\nwritten to {write_section(f'export_formats_{args.model}_{args.size}', body)}")

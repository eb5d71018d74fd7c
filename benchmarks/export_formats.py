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

from edgecnn.commands.bench import measure_isolated  # noqa: E402
from edgecnn.export.formats import FORMATS  # noqa: E402
from edgecnn.models import create, get  # noqa: E402
from edgecnn.runtime.bundle import Manifest, write_manifest  # noqa: E402


def measure(model_name: str, size: int, threads: int, runs: int, root: Path) -> list[dict]:
    """Export `model_name` to every format × precision under `root` and time each bundle."""
    model = create(model_name, num_classes=1000, image_size=size)
    # Random pixels calibrate the quantisers: enough for timing, meaningless for accuracy.
    calibration = np.random.default_rng(0).integers(0, 256, (32, size, size, 3), dtype=np.uint8)
    rows = []
    for spec in FORMATS.values():
        for precision in spec.precisions:
            bundle = root / f"{spec.name}-{precision}"
            bundle.mkdir()
            try:
                model_path = spec.load().export(model, precision, calibration, bundle)
            except Exception as exc:  # a format that cannot export this model is a row, not a crash
                rows.append({"format": spec.name, "precision": precision, "status": f"export failed: {exc}"[:80]})
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
                rows.append({"format": spec.name, "precision": precision, "status": f"runtime failed: {exc}"[:160]})
                continue
            rows.append({"format": spec.name, "precision": precision, "size_mb": size_mb,
                         "p50_ms": stats.p50_ms, "p90_ms": stats.p90_ms, "status": "ok"})
            print(rows[-1], flush=True)
    return rows


def report(model_name: str, size: int, threads: int, rows: list[dict]) -> str:
    float32 = {r["format"]: r["p50_ms"] for r in rows if r["precision"] == "float32" and "p50_ms" in r}
    lines = [
        f"## Export formats: `{model_name}` at {size} px (untrained, 1000 classes), {threads} threads",
        "",
        "Latency only (random calibration images). Each bundle timed in a fresh process; p50/p90 of single-image "
        "predict() through edgecnn.runtime.",
        "",
        "| format | precision | size MB | p50 ms | p90 ms | p50 vs float32 of the same runtime |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "p50_ms" not in r:
            lines.append(f"| {r['format']} | {r['precision']} | – | – | – | {r['status']} |")
            continue
        ratio = r["p50_ms"] / float32[r["format"]] if r["format"] in float32 else float("nan")
        lines.append(
            f"| {r['format']} | {r['precision']} | {r['size_mb']:.2f} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f} | "
            f"{ratio:.2f}× |"
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

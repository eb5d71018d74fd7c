"""Run `edgecnn quickstart` end to end, time it, and record its table in benchmarks/RESULTS.md.

Usage: python benchmarks/quickstart.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402

from edgecnn.cli import main  # noqa: E402
from edgecnn.config import load_recipe  # noqa: E402


def run(out: Path) -> str:
    started = time.perf_counter()
    code = main(["quickstart", "--out", str(out)])
    minutes = (time.perf_counter() - started) / 60
    summary = json.loads((out / "quickstart.json").read_text())
    run_dir = out / "runs" / summary["recipe"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    recipe = load_recipe(run_dir / "recipe.yaml")
    lines = [
        "## Quickstart (`edgecnn quickstart`)",
        "",
        f"`{recipe.model.name}` (width {recipe.model.width}, {recipe.data.image_size} px, weights "
        f"{recipe.model.weights or 'none'}) trained on `{recipe.data.source}:{recipe.data.path}`; Keras test top-1 "
        f"{100 * metrics['test']['top1']:.2f} % after {metrics['epochs']} epochs ({metrics['train_seconds']:.0f} s "
        f"of training); whole command {minutes:.1f} min, exit code {code}. Latency: batch 1, 2 threads, LiteRT.",
        "",
        "| format | precision | size MB | test top-1 % | p50 ms | p90 ms | parity |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        lines.append(
            f"| {row['format']} | {row['precision']} | {row['size_mb']:.2f} | {row['top1']:.2f} | "
            f"{row['p50_ms']:.3f} | {row['p90_ms']:.3f} | {row['checks']} |"
        )
    lines += ["", *[f"- {line.strip()}" for line in summary["acceptance"]]]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the artifacts here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgecnn-quickstart-") as tmp:
        body = run(args.out or Path(tmp))
    print(body)
    print(f"\nwritten to {write_section('quickstart', body)}")

"""`edgecnn quickstart`: train → export float32 + int8 TFLite → evaluate and benchmark on the device runtime."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgecnn.commands.train import parse_overrides

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "quickstart.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=".", help="where runs/ and bundles/ are written (default: .)")
    parser.add_argument("--recipe", default=str(RECIPE), help="recipe to run (default: recipes/quickstart.yaml)")
    parser.add_argument("--threads", type=int, default=2, help="runtime threads for eval and bench (default: 2)")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per bundle (default: 200)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set train.epochs=2",
    )


def run(args: argparse.Namespace) -> int:
    from edgecnn import atomic
    from edgecnn.bench.evaluate import evaluate
    from edgecnn.bench.latency import measure_latency
    from edgecnn.config import load_recipe
    from edgecnn.export.pipeline import export_run
    from edgecnn.report import format_table
    from edgecnn.runtime import load
    from edgecnn.train.runner import load_data, train

    recipe = load_recipe(args.recipe, parse_overrides(args.overrides))
    out = Path(args.out)
    print(f"[1/4] training {recipe.model.name} (width {recipe.model.width}) on {recipe.data.path} "
          f"at {recipe.data.image_size}px for {recipe.train.epochs} epochs")
    run_dir = train(recipe, out / "runs", overwrite=True)

    print("[2/4] exporting and checking against the Keras model")
    results = [export_run(run_dir.root, t.format, t.precision, out / "bundles") for t in recipe.export.targets]

    print(f"[3/4] evaluating on the test split and [4/4] benchmarking ({args.threads} threads, {args.runs} runs)")
    test = load_data(recipe).test
    rows = []
    for result in results:
        predictor = load(result.bundle_dir, threads=args.threads)
        report = evaluate(predictor, test, progress=False)
        latency = measure_latency(predictor, runs=args.runs, warmup=max(10, args.runs // 10))
        rows.append({
            "format": result.manifest.format,
            "precision": result.manifest.precision,
            "size_mb": result.manifest.size_bytes / 2**20,
            "top1": 100 * report.top1,
            "p50_ms": latency.p50_ms,
            "p90_ms": latency.p90_ms,
            "checks": "ok" if result.passed else "FAILED",
            "bundle": str(result.bundle_dir),
        })
    print()
    print(format_table(rows, [
        ("format", "format", "{}"), ("precision", "precision", "{}"), ("size_mb", "size MB", "{:.2f}"),
        ("top1", "top-1 %", "{:.2f}"), ("p50_ms", "p50 ms", "{:.3f}"), ("p90_ms", "p90 ms", "{:.3f}"),
        ("checks", "parity", "{}"),
    ]))
    verdicts = _acceptance(rows)
    for line in verdicts:
        print(line)
    atomic.write_json(out / "quickstart.json", {"recipe": recipe.name, "rows": rows, "acceptance": verdicts})
    print("\nartifacts:")
    print(f"  run      {run_dir.root}  (model.keras, history.csv, metrics.json, plots/)")
    for row in rows:
        print(f"  bundle   {row['bundle']}")
    print(f"  summary  {out / 'quickstart.json'}")
    return 0 if all(r["checks"] == "ok" for r in rows) else 1


def _acceptance(rows: list[dict]) -> list[str]:
    """The quickstart's own targets, checked on what was just measured."""
    by_precision = {r["precision"]: r for r in rows}
    float32, int8 = by_precision.get("float32"), by_precision.get("int8")
    if not (float32 and int8):
        return []
    drop = float32["top1"] - int8["top1"]
    ratio = int8["size_mb"] / float32["size_mb"]
    speedup = float32["p50_ms"] / int8["p50_ms"]
    mark = {True: "✓", False: "✗"}
    return [
        f"{mark[drop <= 1.0]} int8 top-1 within 1 point of float32 ({drop:+.2f} points)",
        f"{mark[ratio <= 0.30]} int8 file {ratio:.0%} of float32 (target ≤ 30 %)",
        f"  int8 runs {speedup:.2f}× as fast as float32 (p50) on this machine",
    ]

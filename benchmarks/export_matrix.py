"""Export matrix: trained models × every format and precision — size, test top-1, Δ vs float, latency, delegation.

Each architecture trains from scratch with recipes/fashion_mnist_short.yaml (Debian's Fashion-MNIST at 32 px), is
exported through the same pipeline as `edgecnn export` (parity checks included), evaluated on the 10,000-image
test split through edgecnn.runtime, and timed in a fresh process per bundle. An int8 bundle that loses more than
the budget is exported again with accuracy control (`--max-drop`), as a second row.

Usage: python benchmarks/export_matrix.py [--models mobilenet_v2 ...] [--epochs 5] [--out DIR] [--runs 200]
With --out, finished training runs are reused, so a re-run only re-exports and re-measures; --train-only trains
them first (e.g. while the machine is busy) so latency can be measured later on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402

from edgecnn.bench.evaluate import evaluate  # noqa: E402
from edgecnn.bench.latency import paired_ratio  # noqa: E402
from edgecnn.commands.bench import measure_isolated  # noqa: E402
from edgecnn.config import load_recipe  # noqa: E402
from edgecnn.errors import AccuracyBudgetError  # noqa: E402
from edgecnn.export.pipeline import ExportResult, export_run  # noqa: E402
from edgecnn.formats import FORMATS  # noqa: E402
from edgecnn.run_dir import RunDir  # noqa: E402
from edgecnn.runtime import load  # noqa: E402
from edgecnn.runtime.bundle import read_manifest  # noqa: E402
from edgecnn.train.runner import load_data, train  # noqa: E402

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "fashion_mnist_short.yaml"
MODELS = ("mobilenet_v2", "mobilenet_v3_small", "efficientnet_lite0")
MAX_DROP = 0.5  # points of top-1: the int8 budget
MAX_INT8_SIZE_RATIO = 0.3
THREADS = 2


def trained_run(model_name: str, epochs: int, out: Path):
    """Train (or reuse a finished) run of the short recipe for `model_name`; returns (recipe, run dir)."""
    recipe = load_recipe(RECIPE, {"name": f"matrix_{model_name}", "model.name": model_name, "train.epochs": epochs})
    run = RunDir(out / "runs" / recipe.name)
    if not run.is_complete():
        run = train(recipe, out / "runs")
    return recipe, run


def measure_bundle(result: ExportResult, test, runs: int) -> dict:
    """One matrix row from an exported bundle: size, test top-1, latency, XNNPACK delegation."""
    manifest = result.manifest
    report = evaluate(load(result.bundle_dir, threads=THREADS), test, progress=False)
    stats = measure_isolated(result.bundle_dir, THREADS, runs, max(10, runs // 10))
    model_files = [f for f in result.bundle_dir.iterdir() if f.suffix in (".tflite", ".onnx", ".bin", ".xml")]
    xnnpack = manifest.checks.get("xnnpack")
    return {
        "bundle": result.bundle_dir,
        "format": manifest.format,
        "precision": manifest.precision,
        "size_mb": sum(f.stat().st_size for f in model_files) / 2**20,
        "top1": 100 * report.top1,
        "p50_ms": stats.p50_ms,
        "p90_ms": stats.p90_ms,
        "delegated": f"{xnnpack['delegated']}/{xnnpack['ops']}" if xnnpack else "–",
        "undelegated": ", ".join(f"{op}×{n}" for op, n in xnnpack["undelegated"].items()) if xnnpack else "",
        "checks": "ok" if result.passed else "FAILED",
    }


def matrix(model_name: str, epochs: int, out: Path, runs: int, reuse: bool = False) -> tuple[dict, list[dict]]:
    """Train `model_name`, export it to every format × precision, and measure each bundle."""
    recipe, run = trained_run(model_name, epochs, out)
    test = load_data(recipe).test
    metrics = json.loads(run.metrics.read_text())
    rows: list[dict] = []
    for spec in FORMATS.values():
        for precision in spec.precisions:
            label = {"format": spec.name, "precision": precision}
            try:
                result = _export(run.root, recipe.name, spec.name, precision, out / "bundles", reuse)
                rows.append(measure_bundle(result, test, runs))
            except Exception as exc:  # a target the converter or runtime refuses is a row, not a crash
                rows.append({**label, "status": _one_line(f"{type(exc).__name__}: {exc}")})
                continue
            float32 = next((r for r in rows if r["format"] == spec.name and r["precision"] == "float32"
                            and "bundle" in r), None)
            if precision != "float32" and float32 is not None:
                rows[-1]["paired"] = paired_ratio(load(rows[-1]["bundle"], threads=THREADS),
                                                  load(float32["bundle"], threads=THREADS))
            drop = metrics["test"]["top1"] * 100 - rows[-1]["top1"]
            if precision == "int8" and drop > MAX_DROP:
                rows.append(_controlled(run, spec.name, out, test, runs))
            print(rows[-1], flush=True)
    return metrics, rows


def _export(run_root: Path, recipe_name: str, format_name: str, precision: str, root: Path, reuse: bool):
    """Export through the pipeline, or (with reuse) take a bundle an earlier run of this script left in `root`."""
    bundle_dir = root / f"{recipe_name}-{format_name}-{precision}"
    if reuse and (bundle_dir / "bundle.json").is_file():
        return ExportResult(bundle_dir, read_manifest(bundle_dir))
    return export_run(run_root, format_name, precision, root)


def _controlled(run, format_name: str, out: Path, test, runs: int) -> dict:
    label = {"format": format_name, "precision": f"int8, --max-drop {MAX_DROP}"}
    try:
        result = export_run(run.root, format_name, "int8", out / "controlled", max_drop=MAX_DROP)
    except AccuracyBudgetError as exc:
        return {**label, "status": "no bundle within budget: " + _one_line(str(exc))}
    row = measure_bundle(result, test, runs)
    control = result.manifest.checks["accuracy_control"]
    return {**row, **label, "precision": f"{row['precision']} (accuracy control: {control['kept']})"}


def report(model_name: str, metrics: dict, rows: list[dict]) -> str:
    float_top1 = 100 * metrics["test"]["top1"]
    float32 = {r["format"]: r for r in rows if r["precision"] == "float32" and "p50_ms" in r}
    lines = [
        f"### `{model_name}`: Keras float top-1 {float_top1:.2f} % ({metrics['epochs']} epochs, "
        f"{metrics['train_seconds']:.0f} s of training, {metrics['params'] / 1e6:.2f} M params)",
        "",
        "| format | precision | size MB | test top-1 % | drop vs float pt | p50 ms | p90 ms | p50 / float32 p50 | "
        "time / float32, interleaved | XNNPACK-delegated ops | not delegated | parity |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "p50_ms" not in r:
            lines.append(f"| {r['format']} | {r['precision']} | – | – | – | – | – | – | – | – | – | {r['status']} |")
            continue
        base = float32.get(r["format"])
        ratio = f"{r['p50_ms'] / base['p50_ms']:.2f}×" if base else "–"
        paired = f"{r['paired']:.2f}×" if "paired" in r else "–"
        lines.append(
            f"| {r['format']} | {r['precision']} | {r['size_mb']:.2f} | {r['top1']:.2f} | "
            f"{float_top1 - r['top1']:+.2f} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f} | {ratio} | {paired} | "
            f"{r['delegated']} | {r['undelegated']} | {r['checks']} |"
        )
    lines += ["", *verdicts(float_top1, rows)]
    return "\n".join(lines)


def verdicts(float_top1: float, rows: list[dict]) -> list[str]:
    """The issue's targets on this model's plain int8 rows (one line per format): ✓ met, ✗ not."""
    out = []
    float32 = {r["format"]: r for r in rows if r["precision"] == "float32" and "p50_ms" in r}
    for r in rows:
        if r["precision"] != "int8" or r["format"] not in float32:
            continue
        if "p50_ms" not in r:
            out.append(f"- ✗ {r['format']} int8: no bundle ({r['status']})")
            continue
        base = float32[r["format"]]
        drop = float_top1 - r["top1"]
        size = r["size_mb"] / base["size_mb"]
        speed = r.get("paired", r["p50_ms"] / base["p50_ms"])
        out.append(
            f"- {r['format']} int8: {_mark(drop <= MAX_DROP)} drop {drop:+.2f} pt (≤ {MAX_DROP}); "
            f"{_mark(size <= MAX_INT8_SIZE_RATIO)} size {size:.2f}× float32 (≤ {MAX_INT8_SIZE_RATIO}); "
            f"{_mark(speed <= 1.0)} time {speed:.2f}× float32, interleaved in one process (≤ 1)"
        )
    return out


def _one_line(message: str, limit: int = 150) -> str:
    """A table cell: the first line of an error, shortened, without pipes."""
    return message.strip().splitlines()[0][:limit].replace("|", "/")


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="keep runs and bundles here (default: a temp dir)")
    parser.add_argument("--train-only", action="store_true", help="only train the runs (into --out), measure later")
    parser.add_argument("--reuse-bundles", action="store_true", help="measure bundles already exported into --out")
    args = parser.parse_args()
    if args.train_only:
        for name in args.models:
            trained_run(name, args.epochs, args.out or Path(tempfile.mkdtemp(prefix="edgecnn-matrix-")))
        sys.exit(0)
    sections = [
        "## Export matrix: trained models × formats × precisions",
        "",
        f"Trained from scratch with `recipes/fashion_mnist_short.yaml` (Fashion-MNIST, 32 px); top-1 on the "
        f"10,000-image test split through edgecnn.runtime; latency batch 1, {THREADS} threads, each bundle in a fresh "
        "process (p50/p90). Interleaved: the bundle and its format's float32 bundle loaded in one process and timed "
        "in alternating rounds (median of per-round p50 ratios); separately measured sub-millisecond p50s drift by "
        "tens of percent, so the int8-vs-float32 verdicts use this. Drop vs float: Keras float top-1 minus the "
        "bundle's. XNNPACK columns: ops LiteRT's CPU delegate runs (TFLite only).",
    ]
    with tempfile.TemporaryDirectory(prefix="edgecnn-matrix-") as tmp:
        for name in args.models:
            model_metrics, model_rows = matrix(name, args.epochs, args.out or Path(tmp), args.runs, args.reuse_bundles)
            sections += ["", report(name, model_metrics, model_rows)]
            print(sections[-1], flush=True)
    body = "\n".join(sections)
    print(f"\nwritten to {write_section('export_matrix', body)}")

"""Int8 options for one finished run, scored on its validation split: which one keeps top-1 within a budget?

Rows: post-training int8 with each calibration size, accuracy control at a budget (larger calibration, float
fallback of the diagnosed layers, int16x8), and int8 from the run's QAT model when the recipe trained one. Every
row is the export's own parity check (TFLite through the runtime on all validation images, against the Keras model
it was converted from) plus XNNPACK's delegation: a row that meets the budget by leaving ops to the reference
kernels is slower on the device, and the table says so. The test split is not touched here (benchmarks/
fashion_mnist.py scores the recipe's own int8 choice on it, once).
Usage: python benchmarks/int8_options.py RUN_DIR [--calibration 500 2000] [--budget 0.3] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402


def float_only_copy(run_root: Path, out: Path) -> Path:
    """A copy of the run whose recipe has QAT off, so int8 export quantises the float model (post-training)."""
    from edgecnn.atomic import write_text
    from edgecnn.run_dir import RunDir

    copy = out / "float-run" / run_root.name
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(run_root, copy, ignore=shutil.ignore_patterns("model_qat.keras", "checkpoints"))
    run = RunDir(copy)
    recipe = run.read_recipe()
    no_qat = recipe.model_copy(update={"qat": recipe.qat.model_copy(update={"enabled": False})})
    write_text(run.recipe, no_qat.to_yaml())
    return copy


def row(label: str, result) -> dict:
    """One table row from an export's manifest (its parity check runs on the whole validation split)."""
    parity = result.manifest.checks["parity"]
    xnnpack = result.manifest.checks.get("xnnpack") or {}
    return {
        "label": label, "precision": result.manifest.precision, "top1": parity["export_top1"],
        "reference": parity["keras_top1"], "agreement": parity["top1_agreement"],
        "delegated": f"{xnnpack.get('delegated', '?')}/{xnnpack.get('ops', '?')}",
        "mb": result.manifest.size_bytes / 1e6,
    }


def main() -> int:
    from edgecnn.export.pipeline import export_run
    from edgecnn.run_dir import open_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run directory (runs/<recipe>)")
    parser.add_argument("--calibration", type=int, nargs="+", default=[500, 2000], help="calibration sizes")
    parser.add_argument("--budget", type=float, default=0.3, help="accuracy-control budget, validation points")
    parser.add_argument("--out", type=Path, help="keep the bundles here (default: a temporary directory)")
    args = parser.parse_args()
    run = open_run(args.run)
    recipe = run.read_recipe()
    out = args.out or Path(tempfile.mkdtemp(prefix="int8-options-"))
    float_run = float_only_copy(run.root, out)
    rows = [row(f"post-training, {n:,} calibration images",
                export_run(float_run, "tflite", "int8", out / f"ptq-{n}", calibration_count=n))
            for n in args.calibration]
    rows.append(row(f"accuracy control, {args.budget:g} point budget",
                    export_run(float_run, "tflite", "int8", out / "control", max_drop=args.budget)))
    float_top1 = rows[0]["reference"]  # the float Keras model on the validation split
    if run.model_qat.is_file():
        rows.append(row(f"QAT model ({recipe.qat.epochs} epoch(s) at {recipe.qat.learning_rate:g})",
                        export_run(run.root, "tflite", "int8", out / "qat")))
    lines = [
        f"## Int8 options on the validation split: `{recipe.name}`", "",
        f"`benchmarks/int8_options.py`: {recipe.model.name} at {recipe.data.image_size} px, float Keras val top-1 "
        f"{float_top1:.2%}; each row's top-1 is its TFLite model through edgecnn.runtime on all validation images "
        "(the export's parity check). Agreement: top-1 agreement with the Keras model it was converted from (the "
        "fake-quantised model for QAT). Delegated: ops XNNPACK runs, of all ops.", "",
        "| option | kept precision | val top-1 | drop vs float | agreement | XNNPACK delegated | MB |",
        "|---|---|---|---|---|---|---|",
        *(f"| {r['label']} | {r['precision']} | {r['top1']:.2%} | {(float_top1 - r['top1']) * 100:+.2f} pt | "
          f"{r['agreement']:.2%} | {r['delegated']} | {r['mb']:.2f} |" for r in rows), "",
        *(f"- {r['label']}: {'within' if float_top1 - r['top1'] <= args.budget / 100 else 'outside'} "
          f"the {args.budget:g} point budget" for r in rows),
    ]
    print("\n".join(lines))
    write_section("int8_options", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

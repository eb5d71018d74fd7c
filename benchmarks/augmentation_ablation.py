"""Augmentation ablation on Fashion-MNIST (issue 10): the same model and epochs per row, float and int8 test top-1.

Rows: no augmentation / today's layers (flip, translate) / + padded crop, RandAugment and random erasing /
+ MixUp and CutMix / the last row scored with test-time augmentation (five_crop) too. Each row trains the recipe
(default recipes/fashion_mnist.yaml, Debian's 60,000 + 10,000 images) with `edgecnn.train`, exports int8 TFLite and
scores both on the test split. Settings are meant to be chosen on the validation split (printed too).
At 15 epochs on all 60,000 images a row takes most of an hour on 2 CPU cores; `--max-per-class` and `--epochs`
make a smaller equal budget per row (RESULTS.md says which).
Usage: python benchmarks/augmentation_ablation.py [--recipe R] [--epochs 15] [--max-per-class N] [--out DIR]
       [--rows 0 3] [--dry-run]   (--dry-run prints each row's resolved augment section and stops)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

TODAY = {"horizontal_flip": True, "translate": 0.1}
STRONG = {**TODAY, "translate": 0.0, "crop_padding": 4, "rand_augment": {"num_ops": 2, "factor": 0.3},
          "random_erasing": {"probability": 0.25}}
MIXED = {**STRONG, "mixup": 0.2, "cutmix": 1.0, "mix_probability": 0.5, "mix_off_epochs": 2}
# (row label, augment section, test-time views)
ROWS = [
    ("no augmentation", {}, []),
    ("today's layers (flip, translate)", TODAY, []),
    ("+ padded crop, RandAugment, random erasing", STRONG, []),
    ("+ MixUp / CutMix", MIXED, []),
    ("+ TTA five_crop", MIXED, ["five_crop"]),
]


def recipe_for(path: Path, row: int, epochs: int, max_per_class: int | None):
    """The recipe of ablation row `row`: the base recipe with the row's augment section and equal epochs."""
    from edgecnn.config import load_recipe

    label, augment, tta = ROWS[row]
    # The TTA row scores the MixUp/CutMix row's own run with test-time views: the same training, no second run.
    first = next(i for i, (_, a, _) in enumerate(ROWS) if a == augment)
    overrides = {"name": f"ablation-{first}", "augment": augment, "train.epochs": epochs,
                 "train.tta": sorted({view for _, a, views in ROWS if a == augment for view in views})}
    if max_per_class:
        overrides["data.max_per_class"] = max_per_class
    return load_recipe(path, overrides=overrides)


def run_row(recipe, out: Path) -> dict:
    """Train (reusing a finished run), export int8 TFLite, score float and int8 on the test split."""
    from edgecnn.bench.evaluate import evaluate
    from edgecnn.data import load_splits
    from edgecnn.export.pipeline import export_run
    from edgecnn.run_dir import RunDir
    from edgecnn.runtime import load
    from edgecnn.train.runner import train

    run = RunDir(out / "runs" / recipe.name)
    if not run.is_complete():
        train(recipe, out / "runs")
    metrics = json.loads(run.metrics.read_text())
    bundle = export_run(run.root, "tflite", "int8", out / "bundles").bundle_dir
    test = load_splits(**recipe.data_settings()).test
    int8 = evaluate(load(bundle), test, progress=False)
    tta = metrics.get("test_tta", {}).get("five_crop", {}).get("top1")
    return {"float": metrics["test"]["top1"], "int8": int8.top1, "tta": tta, "seconds": metrics["train_seconds"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=REPO / "recipes" / "fashion_mnist.yaml")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--max-per-class", type=int, help="fewer training images per class (a quicker, smaller row)")
    parser.add_argument("--out", type=Path, help="keep runs and bundles here (default: a temporary directory)")
    parser.add_argument("--dry-run", action="store_true", help="print the rows' recipes and stop")
    parser.add_argument(
        "--rows", type=int, nargs="+", help="run only these rows (0-based); RESULTS.md is then left alone"
    )
    args = parser.parse_args()
    recipes = [recipe_for(args.recipe, row, args.epochs, args.max_per_class) for row in range(len(ROWS))]
    if args.dry_run:
        for (label, _, _), recipe in zip(ROWS, recipes):
            print(f"{label}: augment={recipe.augment.model_dump(exclude_defaults=True)} tta={recipe.train.tta}")
        return 0
    out = args.out or Path(tempfile.mkdtemp(prefix="ablation-"))
    per_class = f"{args.max_per_class} images per class" if args.max_per_class else "all images"
    lines = ["## Augmentation ablation on Fashion-MNIST (equal budget per row)", "",
             f"`benchmarks/augmentation_ablation.py`: recipe `{args.recipe.name}` ({per_class}, `data.max_per_class` "
             f"caps the test split too), {args.epochs} epochs per row, one seed; int8: full-integer TFLite through "
             "edgecnn.runtime on the same test split; TTA: the MixUp/CutMix row's model scored with five_crop "
             "views.", "",
             "| row | float test top-1 | int8 TFLite test top-1 | TTA five_crop | train s |", "|---|---|---|---|---|"]
    for index, ((label, _, views), recipe) in enumerate(zip(ROWS, recipes)):
        if args.rows and index not in args.rows:
            continue
        row = run_row(recipe, out)
        tta = f"{row['tta']:.2%}" if views and row["tta"] is not None else "—"
        lines.append(f"| {label} | {row['float']:.2%} | {row['int8']:.2%} | {tta} | {row['seconds']:.0f} |")
        print(lines[-1], flush=True)
    if not args.rows:
        write_section("augmentation_ablation", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

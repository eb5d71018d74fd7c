"""Transfer learning on a small training set (issue 10): ImageNet EfficientNet-Lite0 vs the same model from scratch.

Rows, the same total epochs each: from scratch (all layers) / ImageNet, head only (backbone frozen) / ImageNet, head
then fine-tune the whole backbone (recipes/fashion_transfer.yaml) / ImageNet, fine-tune everything from the start.
Data: a fixed, seeded, class-balanced sample of Debian's Fashion-MNIST IDX files written as a PNG folder
(--per-class train + --val-per-class validation images per class from the training file, --test-per-class per class
from the test file), upscaled to the recipe's image size. Each row trains with `edgecnn.train`, exports int8 TFLite
and scores Keras float and TFLite int8 top-1 on the same test images.
Usage: python benchmarks/transfer_learning.py [--epochs 6] [--per-class 100] [--test-per-class 200] [--out DIR]
       [--rows 0 2] [--dry-run]   (--dry-run prints each row's resolved train section and stops)
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
RECIPE = REPO / "recipes" / "fashion_transfer.yaml"
IDX_ROOT = Path("/usr/share/datasets/fashion-mnist")
HEAD_LR, FINETUNE_LR, SCRATCH_LR = 1e-3, 1e-4, 3e-3  # scratch: the repo's from-scratch Fashion recipes' rate


def rows(epochs: int) -> list[tuple[str, dict]]:
    """(label, recipe overrides) per row; every row trains `epochs` epochs in all."""
    head = epochs // 2
    return [
        ("from scratch, all layers", {"model.weights": "none", "train.phases": None, "train.epochs": epochs,
                                      "train.learning_rate": SCRATCH_LR}),
        ("ImageNet, head only (backbone frozen)", {"train.phases": [
            {"name": "head", "epochs": epochs, "learning_rate": HEAD_LR, "backbone": "frozen"}]}),
        (f"ImageNet, head {head} then fine-tune all {epochs - head}", {"train.phases": [
            {"name": "head", "epochs": head, "learning_rate": HEAD_LR, "backbone": "frozen"},
            {"name": "finetune", "epochs": epochs - head, "learning_rate": FINETUNE_LR, "backbone": "trainable"}]}),
        ("ImageNet, fine-tune all from the start", {"train.phases": [
            {"name": "finetune", "epochs": epochs, "learning_rate": FINETUNE_LR, "backbone": "trainable",
             "warmup_epochs": 1}]}),
    ]


def write_folder(root: Path, class_names: list[str], per_class: int, val_per_class: int, test_per_class: int,
                 seed: int = 0) -> Path:
    """root/{train,val,test}/<class>/*.png: a seeded class-balanced sample of the IDX files (kept if present)."""
    import cv2

    from edgecnn.data.idx import find_idx_pair, read_idx
    from edgecnn.data.split import per_class_limit

    counts = {"train": per_class, "val": val_per_class, "test": test_per_class}
    if all(len(list((root / split).rglob("*.png"))) == n * len(class_names) for split, n in counts.items()):
        return root
    for source, splits in (("train", ("train", "val")), ("test", ("test",))):
        images_file, labels_file = find_idx_pair(IDX_ROOT, source)
        images, labels = read_idx(images_file), read_idx(labels_file)
        picked = per_class_limit(labels, sum(counts[s] for s in splits), seed)
        seen = {label: 0 for label in range(len(class_names))}
        for index in picked:
            label = int(labels[index])
            split = splits[0] if seen[label] < counts[splits[0]] else splits[-1]
            seen[label] += 1
            folder = root / split / class_names[label]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{index:05d}.png"), images[index])
    return root


def run_row(recipe, out: Path) -> dict:
    """The ablation's row (train, export int8 TFLite, score float and int8 on test) and the trainable parameters
    of each phase."""
    from augmentation_ablation import run_row as scored_row

    from edgecnn.run_dir import RunDir

    row = scored_row(recipe, out)
    metrics = json.loads(RunDir(out / "runs" / recipe.name).metrics.read_text())
    return {**row, "trainable": [phase["trainable_params"] for phase in metrics["phases"]]}


def gaps(table: list[tuple[str, dict]], scored: list[dict], test_images: int) -> str:
    """Each ImageNet row's float and int8 gain over the from-scratch row, beside the sampling noise of one top-1."""
    if len(scored) != len(table):
        return "(gaps need every row)"
    scratch = scored[0]
    mean = sum(row["float"] for row in scored) / len(scored)
    noise = (mean * (1 - mean) / test_images) ** 0.5 * 100
    gains = "; ".join(f"{label}: {(row['float'] - scratch['float']) * 100:+.1f} float, "
                      f"{(row['int8'] - scratch['int8']) * 100:+.1f} int8"
                      for (label, _), row in zip(table[1:], scored[1:]))
    return (f"Gain over from scratch, in top-1 points: {gains}. One top-1 on {test_images} test images has a binomial "
            f"standard error of about ±{noise:.1f} points (at the rows' mean accuracy), the gap between two rows "
            f"about ±{noise * 2 ** 0.5:.1f}: gaps under about {2 * noise * 2 ** 0.5:.1f} points cannot be told from "
            "test-sampling noise (seed-to-seed variation, not measured with one seed, adds to it).")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="total epochs of every row")
    parser.add_argument("--per-class", type=int, default=100, help="training images per class")
    parser.add_argument("--val-per-class", type=int, default=20)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--image-size", type=int, help="default: the recipe's")
    parser.add_argument("--out", type=Path, help="keep data, runs and bundles here (default: a temporary directory)")
    parser.add_argument("--dry-run", action="store_true", help="print the rows' train sections and stop")
    parser.add_argument(
        "--rows", type=int, nargs="+", help="run only these rows (0-based); RESULTS.md is then left alone"
    )
    args = parser.parse_args()
    from edgecnn.config import load_recipe

    out = args.out or Path(tempfile.mkdtemp(prefix="transfer-"))
    base = load_recipe(RECIPE)
    data = {"data.source": "folder", "data.path": str(out / "data"), "data.max_per_class": None}
    if args.image_size:
        data["data.image_size"] = args.image_size
    table = rows(args.epochs)
    recipes = [load_recipe(RECIPE, overrides={"name": f"transfer-{i}", **data, **overrides})
               for i, (_, overrides) in enumerate(table)]
    if args.dry_run:
        for (label, _), recipe in zip(table, recipes):
            print(f"{label}: weights={recipe.model.weights} {recipe.train.model_dump(exclude_defaults=True)}")
        return 0
    write_folder(out / "data", base.data.class_names, args.per_class, args.val_per_class, args.test_per_class)
    size = recipes[0].data.image_size
    lines = [
        f"## Transfer learning: EfficientNet-Lite0 with ImageNet weights vs from scratch, {args.per_class} images "
        "per class",
        "",
        f"EfficientNet-Lite0 at {size}×{size} px on Fashion-MNIST, {args.per_class} training images per class "
        f"({args.per_class * 10} in all; {args.val_per_class}/class validation), test: a fixed class-balanced "
        f"sample of {args.test_per_class * 10} images of the test file. {args.epochs} epochs per row, batch "
        f"{base.train.batch_size}, horizontal flips; head lr {HEAD_LR:g}, fine-tune lr {FINETUNE_LR:g} (BatchNorm "
        f"frozen), from scratch lr {SCRATCH_LR:g} (BatchNorm training), Adam, cosine. One seed, one run per row. "
        f"Int8: full-integer TFLite, {base.export.calibration_images} calibration images. `benchmarks/"
        f"transfer_learning.py`; row 3 is the phases of `recipes/fashion_transfer.yaml` on this data. Train s on "
        "2 CPU cores shared with other jobs: compare them only roughly.",
        "",
        "| row | Keras float test top-1 | TFLite int8 test top-1 | int8 − float | train s | trainable params "
        "per phase |",
        "|---|---:|---:|---:|---:|---|",
    ]
    scored = []
    for index, ((label, _), recipe) in enumerate(zip(table, recipes)):
        if args.rows and index not in args.rows:
            continue
        row = run_row(recipe, out)
        scored.append(row)
        trainable = " → ".join(f"{n:,}" for n in row["trainable"])
        lines.append(f"| {label} | {row['float']:.2%} | {row['int8']:.2%} | {(row['int8'] - row['float']) * 100:+.1f} "
                     f"| {row['seconds']:.0f} | {trainable} |")
        print(lines[-1], flush=True)
    lines += ["", gaps(table, scored, args.test_per_class * 10)]
    print(lines[-1])
    if not args.rows:
        write_section("transfer_learning", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

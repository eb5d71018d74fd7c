"""`edgecnn baseline --data PATH`: HOG + linear / RBF SVM on your images, accuracy and per-image time."""

from __future__ import annotations

import argparse
import json

from edgecnn.commands.arguments import positive_int

COLUMNS = [
    ("kernel", "SVM", "{}"), ("c", "C", "{}"), ("train_images", "train", "{:d}"), ("test_images", "test", "{:d}"),
    ("features", "HOG dims", "{:d}"), ("accuracy", "accuracy", "{:.2%}"), ("fit_s", "fit s", "{:.1f}"),
    ("ms_per_image", "ms/img (batch)", "{:.3f}"), ("single_image_ms", "ms/img (one)", "{:.3f}"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edgecnn.baseline import KERNELS

    parser.add_argument("--data", required=True, metavar="PATH", help="labelled images: a folder of class folders, "
                        "an IDX directory (Fashion-MNIST) or a built-in set name")
    parser.add_argument("--source", metavar="SOURCE", help="data source: folder, idx or builtin (default: guessed)")
    parser.add_argument("--image-size", type=positive_int, default=28, help="images are resized to this (default 28)")
    parser.add_argument("--kernel", nargs="+", choices=list(KERNELS), default=["linear"],
                        help="SVM kernels to train (default linear)")
    parser.add_argument("--c", type=float, default=None, help="SVM C (default: 1 linear, 10 rbf and rbf_approx)")
    parser.add_argument("--max-train", type=positive_int, default=None,
                        help="train on at most this many images (the exact RBF SVM's time grows with their square; "
                        "rbf_approx grows linearly)")
    parser.add_argument("--cell", type=positive_int, default=4, help="HOG cell size in pixels (default 4)")
    parser.add_argument("--val-fraction", type=float, default=0.0, help="share cut out as validation (default 0)")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="share cut out as test where the data has no test split (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    from edgecnn.baseline import run_baseline
    from edgecnn.baseline.hog_svm import HOGSettings
    from edgecnn.data import guess_source, load_splits
    from edgecnn.report import format_table

    splits = load_splits(source=args.source or guess_source(args.data), path=args.data, image_size=args.image_size,
                         val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed)
    reports = [run_baseline(splits, kernel, args.c, args.max_train, settings=HOGSettings(cell=args.cell),
                            seed=args.seed, progress=not args.json) for kernel in args.kernel]
    rows = [report.to_dict() for report in reports]
    if args.json:
        print(json.dumps({"data": splits.source, "skipped": len(splits.skipped), "results": rows}, indent=2))
        return 0
    print(splits.summary())
    print(format_table(rows, COLUMNS))
    return 0

"""`edgecnn eval BUNDLE`: top-1, per-class accuracy and confusion matrix of a bundle on a data split."""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn.commands.arguments import add_no_verify, positive_int
from edgecnn.errors import DataError, UsageError

if TYPE_CHECKING:
    from edgecnn.data import DataSplits, ImageSet
    from edgecnn.runtime import Predictor

SPLITS = ("test", "val", "train", "all")
TTA_VIEWS = ("hflip", "five_crop", "ten_crop")  # edgecnn.runtime.tta.VIEWS (tests/test_tta.py checks they agree)
REPORT_NAME = "eval.json"
PLOT_NAME = "confusion_matrix.png"
COLUMNS = [("class", "class", "{}"), ("images", "images", "{:d}"), ("accuracy", "accuracy", "{:.1%}")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle directory (or the model file inside it)")
    parser.add_argument(
        "--data", metavar="PATH",
        help="data to evaluate on, split with the bundle's recorded settings "
        "(default: the data set the bundle was trained on, so `test` is the same held-out set)",
    )
    parser.add_argument(
        "--source", metavar="SOURCE",
        help="data source of --data: folder, idx or builtin (default: guessed from PATH)",
    )
    parser.add_argument("--split", choices=SPLITS, default="test", help="which part to evaluate; all = every image")
    parser.add_argument("--threads", type=positive_int, help="interpreter threads (default: the runtime's choice)")
    parser.add_argument(
        "--tta", choices=TTA_VIEWS, metavar="VIEWS",
        help=f"also score test-time augmentation ({', '.join(TTA_VIEWS)}): probabilities averaged over the views; "
        "reports top-1 with and without and the latency cost (views x p50)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    add_no_verify(parser)
    parser.add_argument(
        "--out", metavar="DIR", help=f"where to write {REPORT_NAME} and {PLOT_NAME} (default: the bundle directory)"
    )
    parser.add_argument(
        "--task", choices=("classify", "retrieval"), default="classify",
        help="classify (default): accuracy of a classifier bundle; retrieval: Recall@1/@5, MAP@R and k-NN top-1 "
        "of an embedding bundle (gallery --gallery-split, queries --split)",
    )
    from edgecnn.commands import eval_retrieval

    eval_retrieval.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from edgecnn import atomic
    from edgecnn.bench.evaluate import evaluate
    from edgecnn.data import load_splits
    from edgecnn.report import format_table, plot_confusion_matrix
    from edgecnn.runtime import load

    if args.task == "retrieval":
        from edgecnn.commands import eval_retrieval

        return eval_retrieval.run(args, data_settings, select_split)
    predictor = load(args.bundle, threads=args.threads, verify=args.verify)
    if predictor.manifest.task != "classify":
        raise UsageError(f"{args.bundle}: an embedding bundle; evaluate it with --task retrieval")
    settings = data_settings(predictor, args.data, args.source, args.split)
    splits = load_splits(**settings)
    image_set = select_split(splits, args.split)
    report = evaluate(predictor, image_set, progress=not args.json)

    out_dir = Path(args.out) if args.out else predictor.path.parent
    info = predictor.info()
    result: dict[str, Any] = {
        "bundle": str(args.bundle),
        "split": args.split,
        "data": settings,
        "runtime": info,
        **report.to_dict(),
        "skipped": len(splits.skipped),
        "skipped_files": [{"path": s.path, "reason": s.reason} for s in splits.skipped],
    }
    if args.tta:
        from edgecnn.runtime.tta import tta_summary

        result["tta"] = tta_summary(predictor.predict, image_set.images, image_set.labels, args.tta)
    report_path = atomic.write_json(out_dir / REPORT_NAME, result)
    title = f"{predictor.manifest.name} — {args.split} split, top-1 {report.top1:.1%}"
    plot_path = plot_confusion_matrix(report.confusion_matrix, report.labels, out_dir / PLOT_NAME, title)

    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"bundle {args.bundle}: {info['format']} {info['precision']}, {info.get('package', info['backend'])}")
    print(f"data {splits.source}, {args.split} split: {report.n} images, {len(report.labels)} classes")
    if splits.skipped:
        print(f"skipped {len(splits.skipped)} unreadable or non-image files (listed in {report_path})")
    top5 = f", top-5 {report.top5:.2%}" if report.top5 is not None else ""
    print(f"top-1 {report.top1:.2%}{top5}\n")
    if args.tta:
        tta = result["tta"]
        print(f"TTA {tta['views']} ({tta['view_count']} views): top-1 {tta['top1']:.2%} against "
              f"{tta['top1_without']:.2%} without; latency {tta['view_count']} x {tta['p50_ms']:.2f} ms p50 = "
              f"{tta['tta_p50_ms']:.2f} ms per image\n")
    rows = [{"class": name, "images": report.per_class_n[name], "accuracy": report.per_class[name]}
            for name in report.labels]
    print(format_table(rows, COLUMNS))
    written = ", ".join(str(p) for p in (report_path, plot_path) if p is not None)
    print(f"\nwrote {written}")
    return 0


def data_settings(predictor: Predictor, data: str | None, source: str | None, split: str) -> dict[str, Any]:
    """load_splits keyword arguments: the bundle's recorded data settings, with --data/--source and --split applied."""
    from edgecnn.data import guess_source, load_splits

    recorded = dict(predictor.manifest.source.get("data") or {})
    if data is None:
        if source is not None:
            raise DataError("--source describes --data PATH; give --data too")
        if not recorded:
            raise DataError(
                f"{predictor.path}: the bundle records no data set to evaluate on; pass --data PATH (and --source)"
            )
        settings = recorded
    else:
        settings = {**recorded, "path": data, "source": source or guess_source(data)}
    unknown = set(settings) - set(inspect.signature(load_splits).parameters)
    if unknown:
        raise DataError(f"{predictor.path}: unknown data settings {sorted(unknown)} in bundle.json source.data")
    height, width = predictor.image_size
    if height != width:
        raise DataError(f"eval loads square images; the bundle's input is {height}x{width}")
    # The bundle's own input size and resize mode are the truth, whatever the recipe said.
    settings.update(image_size=height, resize=predictor.manifest.preprocessing.resize)
    if split == "all":
        settings.update(val_fraction=0.0, test_fraction=0.0)
    return settings


def select_split(splits: DataSplits, split: str) -> ImageSet:
    """The named part of `splits`; `all` joins every part (sources may ship their own test part)."""
    import numpy as np

    from edgecnn.data import ImageSet

    if split != "all":
        return getattr(splits, split)
    parts = (splits.train, splits.val, splits.test)
    return ImageSet(
        np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]), splits.class_names
    )

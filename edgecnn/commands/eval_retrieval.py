"""`edgecnn eval BUNDLE --task retrieval`: Recall@1/@5, MAP@R and k-NN top-1 of an embedding bundle, gallery = one
split (train), queries = another (test)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPORT_NAME = "retrieval.json"
COLUMNS = [("metric", "metric", "{}"), ("value", "value", "{:.2%}")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gallery-split", choices=("train", "val", "test"), default="train",
                        help="with --task retrieval: the split indexed as the gallery (default train; queries are "
                        "--split)")
    parser.add_argument("--knn", type=int, default=10, metavar="K",
                        help="with --task retrieval: neighbours voting in k-NN top-1 (default 10)")


def run(args: argparse.Namespace, data_settings: Callable, select_split: Callable) -> int:
    """Run the retrieval evaluation; `data_settings` and `select_split` are edgecnn.commands.eval's (passed in,
    since eval imports this module)."""
    from edgecnn import atomic
    from edgecnn.commands.embedding_bundle import load_embedder
    from edgecnn.data import load_splits
    from edgecnn.errors import UsageError
    from edgecnn.report import format_table
    from edgecnn.retrieval import embed_images, retrieval_report

    if args.split in ("all", args.gallery_split):
        raise UsageError(f"queries (--split {args.split}) must be another split than the gallery "
                         f"(--gallery-split {args.gallery_split})")
    embedder = load_embedder(args.bundle, args.threads)
    settings = data_settings(embedder, args.data, args.source, args.split)
    splits = load_splits(**settings)
    gallery_set, query_set = select_split(splits, args.gallery_split), select_split(splits, args.split)
    progress = not args.json
    gallery = embed_images(embedder, gallery_set.images, progress=progress)
    queries = embed_images(embedder, query_set.images, progress=progress)
    report = retrieval_report(gallery, gallery_set.labels, queries, query_set.labels, knn_k=args.knn,
                              progress=progress)
    info = embedder.info()
    result: dict[str, Any] = {
        "bundle": str(args.bundle), "task": "retrieval", "gallery_split": args.gallery_split,
        "query_split": args.split, "data": settings, "runtime": info, **report.to_dict(),
        "skipped": len(splits.skipped),
    }
    out_dir = Path(args.out) if args.out else embedder.path.parent
    report_path = atomic.write_json(out_dir / REPORT_NAME, result)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"bundle {args.bundle}: {info['format']} {info['precision']} embedder, {info['embedding_size']}-d")
    print(f"data {splits.source}: gallery {args.gallery_split} {report.gallery} images, "
          f"queries {args.split} {report.queries} images")
    rows = [{"metric": f"Recall@{k}", "value": v} for k, v in report.recall.items()]
    rows += [{"metric": "MAP@R", "value": report.map_at_r}, {"metric": f"{report.knn_k}-NN top-1", "value":
             report.knn_top1}]
    print(format_table(rows, COLUMNS))
    print(f"\nwrote {report_path}")
    return 0

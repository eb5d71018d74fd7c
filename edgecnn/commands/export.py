"""`edgecnn export RUN`: convert a trained run into verified bundles, one per format × precision."""

from __future__ import annotations

import argparse

from edgecnn.formats import FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory written by `edgecnn train` (e.g. runs/quickstart)")
    parser.add_argument(
        "--format", default=None, choices=[*FORMATS, "all"],
        help="export format (default: the recipe's export targets; 'all' = every format)",
    )
    parser.add_argument(
        "--precision", nargs="+", default=None,
        help="one or more precisions, or 'all' (default: the recipe's targets, or float32 with --format)",
    )
    parser.add_argument(
        "--task", choices=("classify", "embed"), default="classify",
        help="classify (default) exports the classifier; embed exports the backbone + global pooling + L2 "
        "normalisation as an embedding bundle (<recipe>-embed-<format>-<precision>) for index/search/retrieval",
    )
    parser.add_argument("--out", default="bundles", help="parent directory of bundles (default: bundles)")
    parser.add_argument("--calibration", type=int, default=None, help="number of int8 calibration images")
    parser.add_argument(
        "--max-drop", type=float, default=None, metavar="POINTS",
        help="accuracy budget in validation top-1 points (default: the recipe's export.max_drop, else 1): "
        "dynamic/int8/int16x8 bundles pass within it; with it set, int8 over it names the culprit layers and tries "
        "remedies, failing if none meets it",
    )


def targets(args: argparse.Namespace, recipe) -> list[tuple[str, str]]:
    """(format, precision) pairs from the command line, falling back to the recipe's export targets."""
    if args.format is None and args.precision is None:
        return [(t.format, t.precision) for t in recipe.export.targets]
    formats = list(FORMATS) if args.format in (None, "all") else [args.format]
    pairs = []
    for name in formats:
        wanted = args.precision or ["float32"]
        precisions = FORMATS[name].precisions if "all" in wanted else wanted
        pairs += [(name, precision) for precision in precisions]
    return pairs


def run(args: argparse.Namespace) -> int:
    from edgecnn.formats import check_target
    from edgecnn.run_dir import open_run

    recipe = open_run(args.run).read_recipe()
    pairs = targets(args, recipe)
    for format_name, precision in pairs:
        check_target(format_name, precision)  # fail before any slow conversion
    from edgecnn.export.pipeline import export_run

    results = [export_run(args.run, f, p, args.out, args.calibration, args.max_drop, args.task) for f, p in pairs]
    for result in results:
        print(f"  {result.bundle_dir}")
    failed = [r for r in results if not r.passed]
    if failed:
        print(f"{len(failed)} export(s) failed their checks (float: probability parity; dynamic/int8/int16x8: "
              "validation top-1 drop within --max-drop, default 1 point; see checks in bundle.json)")
    return 1 if failed else 0

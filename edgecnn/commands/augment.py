"""`edgecnn augment RECIPE`: a PNG grid of augmented training samples with their (mixed) labels, before training."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgecnn.commands.arguments import positive_int
from edgecnn.commands.train import parse_overrides

PREVIEW_NAME = "augmented_samples.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="YAML recipe (see recipes/)")
    parser.add_argument("--count", type=positive_int, default=32, help="how many samples (default: 32)")
    parser.add_argument(
        "--out", metavar="PNG", help=f"where to write the grid (default: ./<recipe name>-{PREVIEW_NAME})"
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set augment.mixup=0.2 (repeatable; VALUE is parsed as YAML)",
    )


def run(args: argparse.Namespace) -> int:
    from edgecnn.config import load_recipe

    recipe = load_recipe(args.recipe, parse_overrides(args.overrides))
    from edgecnn.train.preview import write_preview
    from edgecnn.train.runner import load_data

    data = load_data(recipe)
    out = Path(args.out) if args.out else Path(f"{recipe.name}-{PREVIEW_NAME}")
    written = write_preview(recipe, data.train, out, count=args.count)
    print(f"wrote {written}")
    return 0

"""`edgecnn train RECIPE`: train into runs/<name>/ (resumes an interrupted run of the same recipe)."""

from __future__ import annotations

import argparse

import yaml

from edgecnn.errors import RecipeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="YAML recipe (see recipes/)")
    parser.add_argument("--out", default="runs", help="parent directory of run directories (default: runs)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run of the same name")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set train.epochs=3 (repeatable; VALUE is parsed as YAML)",
    )


def parse_overrides(pairs: list[str]) -> dict:
    """`a.b=value` strings → {"a.b": parsed YAML value}."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RecipeError(f"--set expects KEY=VALUE (e.g. train.epochs=3), got {pair!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise RecipeError(f"--set {key}: the value is not valid YAML ({exc})") from None
    return overrides


def run(args: argparse.Namespace) -> int:
    from edgecnn.config import load_recipe

    recipe = load_recipe(args.recipe, parse_overrides(args.overrides))
    from edgecnn.train.runner import train

    run_dir = train(recipe, args.out, overwrite=args.overwrite)
    print(f"next: edgecnn export {run_dir.root}")
    return 0

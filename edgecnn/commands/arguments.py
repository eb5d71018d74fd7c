"""argparse value types shared by the subcommands."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def add_no_verify(parser: argparse.ArgumentParser) -> None:
    """--no-verify: load bundles without checking their files' SHA-256 against bundle.json."""
    parser.add_argument(
        "--no-verify", dest="verify", action="store_false",
        help="skip checking the model files against the SHA-256 in bundle.json (for very large files)",
    )


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value

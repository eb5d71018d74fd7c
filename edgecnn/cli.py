"""`edgecnn` command line: a table of subcommands, each in its own module, imported only when used.

Lazy imports keep `edgecnn bench` and `edgecnn eval` free of TensorFlow on a device.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edgecnn import __version__
from edgecnn.errors import EdgecnnError
from edgecnn.logs import quiet_native_logs, set_verbose

# name → (module, one-line help). Each module defines add_arguments(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": ("edgecnn.commands.quickstart", "train, export, evaluate and benchmark on the built-in data set"),
    "train": ("edgecnn.commands.train", "train a model from a YAML recipe into a run directory"),
    "augment": ("edgecnn.commands.augment", "a PNG grid of a recipe's augmented training samples and their labels"),
    "export": ("edgecnn.commands.export", "convert a trained run into deployable bundles (TFLite, ...)"),
    "eval": ("edgecnn.commands.eval", "top-1, per-class accuracy and confusion matrix of a bundle"),
    "bench": ("edgecnn.commands.bench", "latency (min/p50/p90/p99), load time and peak memory of a bundle"),
    "models": ("edgecnn.commands.models", "list the model zoo with parameters and MACs"),
    "live": ("edgecnn.commands.live", "classify a camera, stream or video live: fps, latency, accuracy, web view"),
    "index": ("edgecnn.commands.index", "embed a folder of images into a gallery file with an embedding bundle"),
    "search": ("edgecnn.commands.search", "the gallery images nearest to a query image, with a PNG grid"),
    "embed-map": ("edgecnn.commands.embed_map", "t-SNE maps of an embedding bundle's features and of raw pixels"),
    "baseline": ("edgecnn.commands.baseline", "HOG + SVM baseline on a data set: accuracy and per-image time"),
    "devices": ("edgecnn.commands.devices", "list the device profiles (threads, runtimes, camera, install notes)"),
    "deploy": ("edgecnn.commands.deploy", "choose the fastest bundle within an accuracy budget for a device profile"),
}

# Exit code for bad input (argparse uses 2 for bad arguments too).
USER_ERROR = 2
# Packages of the extras a base (device) install lacks → the extra that brings them.
EXTRAS: dict[str, str] = {
    "tensorflow": "train", "keras": "train", "sklearn": "train", "matplotlib": "train",
    "tf2onnx": "export", "onnx": "export", "nncf": "export",
}


def missing_extra_message(command: str, package: str) -> str:
    """One line for a command that needs an extra the base install does not have."""
    python = ".".join(map(str, sys.version_info[:2]))
    return (
        f"edgecnn {command}: error: {package} is not installed; this command needs "
        f"`pip install 'edgecnn[{EXTRAS[package]}]'` (the base install is the device runtime only; TensorFlow "
        f"publishes wheels for Python 3.10-3.13, this is Python {python})"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgecnn",
        description="Train image-classification CNNs from recipes, export verified bundles, run them on devices.",
        epilog="Start with `edgecnn quickstart`; `edgecnn COMMAND --help` explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"edgecnn {__version__}")
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's and the runtimes' own log output (hidden by default)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        set_verbose(True)
    quiet_native_logs()
    try:
        return int(args._module.run(args) or 0)
    except EdgecnnError as exc:
        # Bad input (recipe, data, bundle, missing extra) is reported in one line; anything else is a bug and keeps
        # its traceback.
        print(f"edgecnn {args.command}: error: {exc}", file=sys.stderr)
        return USER_ERROR
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in EXTRAS:
            raise
        print(missing_extra_message(args.command, exc.name.split(".")[0]), file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print(f"edgecnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

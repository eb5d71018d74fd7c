"""The errors edgecnn raises for bad input. A leaf module: it imports nothing from edgecnn.

Every error caused by what the user gave (a recipe, a data folder, a bundle, a device profile, a missing optional
package) derives from `EdgecnnError`; the CLI prints those as one line and exits 2. Anything else is a bug and keeps
its traceback. Each class also derives from the built-in exception a caller would expect (ValueError, ImportError,
FileNotFoundError), so library users can catch either.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class EdgecnnError(Exception):
    """A problem with the user's input or installation, reported without a traceback."""


class UsageError(EdgecnnError, ValueError):
    """A command-line value or a name (model, format, data set) that does not exist."""


class RecipeError(EdgecnnError, ValueError):
    """A recipe file is missing, not YAML, or does not match the schema."""


class RunDirError(EdgecnnError, FileNotFoundError):
    """A run directory is missing, unfinished, or already holds a finished run."""


class RunExistsError(EdgecnnError, FileExistsError):
    """The run directory already holds a finished run and overwriting was not asked for."""


class DataError(EdgecnnError, ValueError):
    """The data path, layout or contents cannot give usable training or evaluation splits."""


class ImageDecodeError(DataError):
    """A file or frame could not be decoded as an image."""


class LabelMismatchError(DataError):
    """The data set's class names are not the bundle's labels, in the same order."""


class BundleError(EdgecnnError, ValueError):
    """A bundle directory or model file is missing, unreadable or malformed."""


class GalleryError(EdgecnnError, ValueError):
    """A gallery file is missing, malformed, or was built with another bundle than the one searching it."""


class WeightsError(EdgecnnError, ValueError):
    """Pretrained weights could not be found or loaded."""


class ExportError(EdgecnnError, ValueError):
    """An export could not be made or failed a check it must pass."""


class AccuracyBudgetError(ExportError):
    """No accuracy-control remedy brought the top-1 drop within the budget."""


class DeviceProfileError(EdgecnnError, ValueError):
    """A device profile is missing or does not match the schema."""


class MissingDependencyError(EdgecnnError, ImportError):
    """An optional package that this feature needs is not installed."""


def require(module: str, purpose: str, install: str) -> ModuleType:
    """Import an optional `module`, or raise MissingDependencyError saying what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{purpose} needs the {module!r} package: {install}") from exc

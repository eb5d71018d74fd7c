"""Runtime backends, looked up through the format table by model-file suffix. Imported lazily, so a device
needs only its own runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgecnn.errors import BundleError
from edgecnn.formats import FORMATS, format_of_model_file


class Backend(Protocol):
    """What every runtime backend offers the Predictor."""

    def run(self, image: np.ndarray) -> np.ndarray:
        """Run one uint8 RGB image (1, H, W, 3) and return float32 probabilities (num_classes,)."""

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the model expects."""

    @property
    def num_classes(self) -> int:
        """Length of the probability output (from the model's static output shape)."""

    def info(self) -> dict[str, Any]:
        """Backend name and version, threads, tensor dtypes, precision facts."""


def model_suffixes() -> list[str]:
    """The model-file suffixes some runtime backend loads."""
    return sorted(spec.suffix for spec in FORMATS.values())


def open_backend(model_path: Path, threads: int | None) -> Backend:
    """Open `model_path` with the backend of the format its suffix names."""
    spec = format_of_model_file(model_path)
    if spec is None:
        raise BundleError(
            f"{model_path}: not a model file this runtime can load; expected one of {model_suffixes()}"
        )
    return spec.load_backend().open_model(model_path, threads=threads)

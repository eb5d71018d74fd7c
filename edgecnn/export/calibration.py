"""Calibration input checks shared by the exporters (the sample itself comes from edgecnn.data.calibration)."""

from __future__ import annotations

import numpy as np

from edgecnn.errors import ExportError


def require_calibration(images: np.ndarray | None) -> np.ndarray:
    """The calibration images, or an ExportError saying that full-integer quantisation needs them."""
    if images is None or len(images) == 0:
        raise ExportError("int8 export needs calibration images (a sample of training images), got none")
    return images

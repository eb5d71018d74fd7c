"""Calibration images for post-training quantisation: a seeded, class-stratified sample of training images."""

from __future__ import annotations

import numpy as np

from edgecnn.data import ImageSet
from edgecnn.data.split import per_class_limit

# Precisions whose activation ranges come from calibration images.
CALIBRATED_PRECISIONS = ("int8", "int16x8")


def calibration_images(train: ImageSet, count: int, seed: int = 0) -> np.ndarray:
    """About `count` training images, the same number from every class (fewer if a class is small)."""
    per_class = max(1, count // max(1, len(train.class_names)))
    indices = per_class_limit(train.labels, per_class, seed)
    return train.images[indices]


def require_calibration(images: np.ndarray | None) -> np.ndarray:
    """The calibration images, or a ValueError saying that full-integer quantisation needs them."""
    if images is None or len(images) == 0:
        raise ValueError("int8 export needs calibration images (a sample of training images), got none")
    return images

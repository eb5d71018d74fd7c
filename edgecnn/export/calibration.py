"""Calibration images for post-training quantisation: a seeded, class-stratified sample of training images."""

from __future__ import annotations

import numpy as np

from edgecnn.data import ImageSet
from edgecnn.data.split import per_class_limit


def calibration_images(train: ImageSet, count: int, seed: int = 0) -> np.ndarray:
    """About `count` training images, the same number from every class (fewer if a class is small)."""
    per_class = max(1, count // max(1, len(train.class_names)))
    indices = per_class_limit(train.labels, per_class, seed)
    return train.images[indices]

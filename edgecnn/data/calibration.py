"""Calibration images for post-training quantisation: a seeded, class-stratified sample of training images.

Train writes one sample into the run directory (`calibration.npz`), large enough for accuracy control's larger
calibration; export takes any smaller count from it, so it needs no raw images. `sample.take(count)` returns
exactly what `calibration_images(train, count, seed)` would: `per_class_limit` shuffles each class the same way
whatever the limit, so a smaller sample is the first ranks of each class of a larger one, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecnn.data.stream import Part, read_part
from edgecnn.errors import DataError

# Train stores this many times the recipe's calibration count, so accuracy control's larger-calibration remedy and
# `edgecnn export --calibration` up to that size need no raw images.
LARGER_CALIBRATION_FACTOR = 4


def per_class_count(count: int, num_classes: int) -> int:
    """Images per class for a sample of about `count` images."""
    return max(1, count // max(1, num_classes))


@dataclass(frozen=True)
class CalibrationSample:
    """Training images with each one's rank in its class's seeded shuffle; sorted by training-set index."""

    images: np.ndarray
    labels: np.ndarray
    ranks: np.ndarray
    num_classes: int
    per_class: int  # the per-class limit it was drawn with: any count up to per_class × classes is served exactly

    def can_take(self, count: int) -> bool:
        return per_class_count(count, self.num_classes) <= self.per_class

    def take(self, count: int) -> np.ndarray:
        """The calibration images for `count` (the same as calibration_images on the full training split)."""
        per_class = per_class_count(count, self.num_classes)
        if not self.can_take(count):
            raise DataError(
                f"the run's calibration sample holds {self.per_class} images per class; {count} calibration images "
                f"need {per_class}. Export with fewer, or retrain with a larger export.calibration_images"
            )
        return self.images[self.ranks < per_class]

    def save(self, path) -> None:
        """Write the sample as a compressed .npz (arrays only: no pickles)."""
        np.savez_compressed(path, images=self.images, labels=self.labels, ranks=self.ranks,
                            num_classes=np.int64(self.num_classes), per_class=np.int64(self.per_class))

    @classmethod
    def load(cls, path) -> CalibrationSample:
        """Read a sample written by `save` (arrays only; pickles refused)."""
        with np.load(path, allow_pickle=False) as npz:
            return cls(npz["images"], npz["labels"], npz["ranks"], int(npz["num_classes"]), int(npz["per_class"]))


def _ranked_indices(labels: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """per_class_limit's indices, sorted, and each one's rank in its class's shuffle."""
    rng = np.random.default_rng(seed)
    kept = [rng.permutation(np.flatnonzero(labels == cls))[:limit] for cls in np.unique(labels)]
    indices = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    ranks = np.concatenate([np.arange(len(k)) for k in kept]) if kept else np.zeros(0, np.int64)
    order = np.argsort(indices, kind="stable")
    return indices[order], ranks[order]


def calibration_sample(train: Part, count: int, seed: int = 0) -> CalibrationSample:
    """A sample that serves every calibration count up to `count` (see the module docstring); from a streamed
    split, only the sample is decoded (less any file that fails to)."""
    per_class = per_class_count(count, len(train.class_names))
    indices, ranks = _ranked_indices(train.labels, per_class, seed)
    images, kept = read_part(train, indices)
    return CalibrationSample(images, train.labels[indices][kept], ranks[kept], len(train.class_names), per_class)


def calibration_images(train: Part, count: int, seed: int = 0) -> np.ndarray:
    """About `count` training images, the same number from every class (fewer if a class is small)."""
    return calibration_sample(train, count, seed).take(count)

"""In-memory image sets: uint8 RGB at the model size, integer labels, class names, and what was skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Skipped:
    """A file left out of a data set, and why."""

    path: str
    reason: str


@dataclass
class ImageSet:
    """Images (N, H, W, 3) uint8 RGB with labels (N,) indexing `class_names`."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if self.images.dtype != np.uint8 or (len(self.images) and self.images.shape[-1] != 3):
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> ImageSet:
        return ImageSet(self.images[indices], self.labels[indices], self.class_names)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(count) for name, count in zip(self.class_names, counts)}


@dataclass
class DataSplits:
    """Train / validation / test sets from one source, with every skipped file listed.

    The parts are ImageSets, or edgecnn.data.stream.FileSets when a folder too large for memory is streamed.
    """

    train: ImageSet
    val: ImageSet
    test: ImageSet
    class_names: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    source: str = ""

    @property
    def streamed(self) -> bool:
        return not isinstance(self.train, ImageSet)

    def summary(self) -> str:
        return (
            f"{self.source}: {len(self.class_names)} classes, train {len(self.train)}, val {len(self.val)}, "
            f"test {len(self.test)}, skipped {len(self.skipped)}" + (", streamed from disk" if self.streamed else "")
        )

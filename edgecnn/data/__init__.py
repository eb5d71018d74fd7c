"""Data sources → train/val/test ImageSets of uint8 RGB at the model size (numpy and OpenCV only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgecnn.data.builtin import BUILTIN_SETS, load_builtin
from edgecnn.data.dataset import DataSplits, ImageSet, Skipped
from edgecnn.data.folder import class_names_of, has_split_dirs, load_folder
from edgecnn.data.idx import find_idx_pair, read_idx
from edgecnn.data.split import per_class_limit, stratified_split
from edgecnn.runtime.preprocess import ResizeMode, fit_batch

__all__ = ["SOURCES", "DataSplits", "ImageSet", "Skipped", "load_splits", "BUILTIN_SETS"]


class DataSourceError(ValueError):
    """The data path or layout does not match the data source."""


def load_splits(
    source: str,
    path: str,
    image_size: int,
    resize: ResizeMode = "stretch",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    class_names: list[str] | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
) -> DataSplits:
    """Load `path` with the named source and return seeded, stratified train/val/test splits."""
    try:
        loader = SOURCES[source]
    except KeyError:
        raise DataSourceError(f"unknown data source {source!r}; available: {sorted(SOURCES)}") from None
    size = (image_size, image_size)
    parts, names, skipped = loader(path, size, resize, class_names)
    limit = (lambda s: s.subset(per_class_limit(s.labels, max_per_class, seed))) if max_per_class else (lambda s: s)
    parts = {k: limit(v) for k, v in parts.items()}
    train = parts["train"]
    if len(train) == 0:
        raise DataSourceError(f"{path}: no readable training images found ({len(skipped)} files skipped)")
    # Cut validation/test out of train where the source did not provide them.
    wanted = [("val", val_fraction), ("test", test_fraction)]
    missing = [(split, fraction) for split, fraction in wanted if split not in parts]
    if missing:
        rest, *cut = stratified_split(train.labels, tuple(f for _, f in missing), seed)
        for (split, _), indices in zip(missing, cut):
            parts[split] = train.subset(indices)
        train = train.subset(rest)
    return DataSplits(train, parts["val"], parts["test"], names, skipped, source=f"{source}:{path}")


Parts = dict[str, ImageSet]
SourceLoader = Callable[[str, tuple[int, int], ResizeMode, "list[str] | None"], tuple[Parts, list[str], list[Skipped]]]


def _from_folder(path: str, size: tuple[int, int], resize: ResizeMode, class_names: list[str] | None):
    root = Path(path)
    if not root.is_dir():
        raise DataSourceError(f"data path {root} does not exist or is not a directory")
    top = root / "train" if has_split_dirs(root) else root
    names = class_names or class_names_of(top)
    parts: Parts = {}
    skipped: list[Skipped] = []
    splits = [s for s in ("train", "val", "test") if (root / s).is_dir()] if top != root else ["train"]
    for split in splits:
        found, skipped_here = load_folder(root / split if top != root else root, names, size, resize)
        parts[split] = found
        skipped += skipped_here
    return parts, names, skipped


def _from_idx(path: str, size: tuple[int, int], resize: ResizeMode, class_names: list[str] | None):
    root = Path(path)
    if not root.is_dir():
        raise DataSourceError(f"data path {root} does not exist or is not a directory")
    parts: Parts = {}
    names: list[str] = []
    for split in ("train", "test"):
        pair = find_idx_pair(root, split)
        if pair is None:
            if split == "train":
                raise DataSourceError(f"{root}: no train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz]")
            continue
        labels = read_idx(pair[1]).astype(np.int64)
        names = class_names or [str(i) for i in range(int(labels.max()) + 1)]
        parts[split] = ImageSet(fit_batch(read_idx(pair[0]), size, resize), labels, names)
    return parts, names, []


def _from_builtin(path: str, size: tuple[int, int], resize: ResizeMode, class_names: list[str] | None):
    arrays = load_builtin(path)
    names = class_names or arrays.class_names
    parts: Parts = {"train": ImageSet(fit_batch(arrays.train_images, size, resize), arrays.train_labels, names)}
    if arrays.test_images is not None:
        parts["test"] = ImageSet(fit_batch(arrays.test_images, size, resize), arrays.test_labels, names)
    return parts, names, []


SOURCES: dict[str, SourceLoader] = {
    "folder": _from_folder,
    "idx": _from_idx,
    "builtin": _from_builtin,
}

"""Data sets that ship with the install (offline), by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np

from edgecnn.errors import DataError, require


@dataclass(frozen=True)
class BuiltinArrays:
    """Raw arrays of a built-in set: images (N, H, W) or (N, H, W, C) uint8, int labels, optional test part."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray | None
    test_labels: np.ndarray | None
    class_names: list[str]


def _fashion_mnist_subset() -> BuiltinArrays:
    """8,000 train / 1,500 test Fashion-MNIST images (stratified, seeded) committed as compressed npz."""
    folder = resources.files("edgecnn.data") / "builtin"
    with (folder / "fashion_mnist_subset.npz").open("rb") as f, np.load(f) as npz:
        arrays = {k: npz[k] for k in npz.files}
    names = (folder / "fashion_mnist_labels.txt").read_text(encoding="utf-8").split()
    return BuiltinArrays(
        arrays["train_images"], arrays["train_labels"].astype(np.int64),
        arrays["test_images"], arrays["test_labels"].astype(np.int64), names,
    )


def _digits() -> BuiltinArrays:
    """scikit-learn's 1,797 8×8 digits, rescaled from 0..16 to 0..255 (needs the [train] extra)."""
    datasets = require("sklearn.datasets", "the built-in 'digits' data set", "pip install 'edgecnn[train]'")
    digits = datasets.load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return BuiltinArrays(images, digits.target.astype(np.int64), None, None, [str(d) for d in range(10)])


BUILTIN_SETS: dict[str, Callable[[], BuiltinArrays]] = {
    "fashion-mnist-subset": _fashion_mnist_subset,
    "digits": _digits,
}


def load_builtin(name: str) -> BuiltinArrays:
    """Arrays of the built-in set `name`."""
    try:
        return BUILTIN_SETS[name]()
    except KeyError:
        raise DataError(f"unknown built-in data set {name!r}; available: {', '.join(BUILTIN_SETS)}") from None

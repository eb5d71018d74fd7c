"""Seeded stratified splits.

Written with numpy rather than scikit-learn's train_test_split so the device install (which evaluates on
image folders too) does not need scikit-learn.
"""

from __future__ import annotations

import numpy as np


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """Split indices into len(fractions) + 1 parts: one per fraction, the remainder first.

    Every class is shuffled with `seed` and cut in the same proportions, so each part keeps the class balance.
    Returns sorted index arrays: [rest, part_for_fractions[0], part_for_fractions[1], ...].
    """
    if sum(fractions) >= 1:
        raise ValueError(f"split fractions must sum to less than 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for i, fraction in enumerate(fractions, start=1):
            count = int(round(fraction * len(members)))
            parts[i].append(members[start : start + count])
            start += count
        parts[0].append(members[start:])
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def per_class_limit(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Sorted indices keeping at most `limit` seeded-random examples of each class."""
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == cls))[:limit] for cls in np.unique(labels)]
    return np.sort(np.concatenate(keep))

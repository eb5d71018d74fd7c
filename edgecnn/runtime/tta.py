"""Test-time augmentation: numpy views of model-size uint8 images, probabilities averaged over them. No TensorFlow.

Crops come from the image zero-padded by `padding` pixels on each side (the centre crop is the image itself), the
same geometry as training's `augment.crop_padding`, so no view needs a resize.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

__all__ = ["VIEWS", "default_padding", "p50_ms", "predict_tta", "tta_summary", "views"]

Predict = Callable[[np.ndarray], np.ndarray]


def default_padding(size: int) -> int:
    """Crop offset for a `size`-pixel side: an eighth of it (4 px at 32 px), at least one pixel."""
    return max(1, round(size / 8))


def _hflip(images: np.ndarray, padding: int) -> list[np.ndarray]:
    return [images, images[:, :, ::-1]]


def _five_crop(images: np.ndarray, padding: int) -> list[np.ndarray]:
    height, width = images.shape[1:3]
    p = padding
    padded = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)))
    # centre (the image itself), then the four corners of the padded image
    offsets = [(p, p), (0, 0), (0, 2 * p), (2 * p, 0), (2 * p, 2 * p)]
    return [padded[:, y : y + height, x : x + width] for y, x in offsets]


def _ten_crop(images: np.ndarray, padding: int) -> list[np.ndarray]:
    crops = _five_crop(images, padding)
    return crops + [crop[:, :, ::-1] for crop in crops]


# name → views(images (N, H, W, 3), padding) -> list of (N, H, W, 3) arrays; the first view is the plain image.
VIEWS: dict[str, Callable[[np.ndarray, int], list[np.ndarray]]] = {
    "hflip": _hflip,
    "five_crop": _five_crop,
    "ten_crop": _ten_crop,
}


def views(images: np.ndarray, name: str, padding: int | None = None) -> list[np.ndarray]:
    """The test-time views `name` of a batch of images, each contiguous and of the input's shape and dtype."""
    if name not in VIEWS:
        raise ValueError(f"unknown test-time augmentation {name!r}; available: {', '.join(VIEWS)}")
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"views expects a batch (N, H, W, C), got shape {images.shape}")
    padding = default_padding(min(images.shape[1:3])) if padding is None else padding
    if padding < 1:
        raise ValueError(f"padding must be at least 1 pixel, got {padding}")
    return [np.ascontiguousarray(view) for view in VIEWS[name](images, padding)]


def predict_tta(predict: Predict, images: np.ndarray, name: str, padding: int | None = None) -> np.ndarray:
    """Probabilities of `images` averaged over the views `name` (predict maps a batch to probabilities)."""
    return np.mean([predict(view) for view in views(images, name, padding)], axis=0)


def p50_ms(predict: Predict, image: np.ndarray, repeats: int = 21) -> float:
    """Median latency in milliseconds of `predict` on one image (a batch of one), after one warm-up call."""
    batch = np.asarray(image)[None]
    predict(batch)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict(batch)
        timings.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(timings)


def tta_summary(
    predict: Predict, images: np.ndarray, labels: np.ndarray, name: str, padding: int | None = None, batch: int = 64,
) -> dict:
    """Top-1 with and without the views `name` (one pass: the first view is the plain image) and the latency cost."""
    if not len(images):
        raise ValueError("tta_summary needs at least one image")
    plain_hits = tta_hits = 0
    count = 0
    for start in range(0, len(images), batch):
        chunk_views = views(images[start : start + batch], name, padding)
        probabilities = [predict(view) for view in chunk_views]
        truth = np.asarray(labels[start : start + batch])
        plain_hits += int((probabilities[0].argmax(axis=1) == truth).sum())
        tta_hits += int((np.mean(probabilities, axis=0).argmax(axis=1) == truth).sum())
        count = len(chunk_views)
    single_ms = round(p50_ms(predict, images[0]), 3)  # rounded first, so the report's views x p50 adds up
    return {
        "views": name,
        "view_count": count,
        "top1": tta_hits / len(images),
        "top1_without": plain_hits / len(images),
        "p50_ms": single_ms,
        "tta_p50_ms": round(count * single_ms, 3),  # the views run one after another on a device
    }

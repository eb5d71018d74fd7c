"""A Keras model's probabilities on a data part, in memory or streamed a chunk at a time (evaluation never holds a
streamed split in memory)."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from edgecnn.data.dataset import ImageSet
from edgecnn.data.stream import Part, iter_part
from edgecnn.runtime.tta import tta_summary

# Images decoded per model.predict call on a streamed part: a multiple of the batch, so batches match in-memory ones.
CHUNK = 1024
BATCH = 256


def predict_part(model: keras.Model, part: Part) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, positions in `part` they belong to); a streamed part's unreadable files have no row."""
    probabilities, positions = [], []
    for images, where in iter_part(part, CHUNK):
        if len(images):
            probabilities.append(model.predict(images.astype(np.float32), batch_size=BATCH, verbose=0))
            positions.append(where)
    if not probabilities:
        return np.zeros((0, model.output_shape[-1]), np.float32), np.zeros(0, np.int64)
    return np.concatenate(probabilities), np.concatenate(positions)


def tta_part(predict: Callable[[np.ndarray], np.ndarray], part: Part, view: str) -> dict:
    """tta_summary of a part; a streamed one a chunk at a time (top-1 weighted by chunk size; the first chunk's
    latency)."""
    if isinstance(part, ImageSet):
        return tta_summary(predict, part.images, part.labels, view)
    chunks = [(tta_summary(predict, images, part.labels[where], view), len(where))
              for images, where in iter_part(part, CHUNK) if len(where)]
    first, _ = chunks[0]
    total = sum(count for _, count in chunks)
    return {**first, **{key: sum(summary[key] * count for summary, count in chunks) / total
                        for key in ("top1", "top1_without")}}

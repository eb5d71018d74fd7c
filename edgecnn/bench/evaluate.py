"""Accuracy of a Predictor on an ImageSet: top-1, top-5, per-class accuracy and confusion matrix. No TensorFlow."""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from edgecnn.data.dataset import ImageSet
from edgecnn.errors import DataError, LabelMismatchError  # LabelMismatchError re-exported for existing imports
from edgecnn.metrics import EvalReport, classification_report
from edgecnn.runtime.predictor import Predictor

__all__ = ["EvalReport", "LabelMismatchError", "check_class_names", "classification_report", "evaluate"]


def check_class_names(data_class_names: list[str], bundle_labels: list[str]) -> None:
    """Raise LabelMismatchError unless the data set's classes are the bundle's labels in the same order."""
    if list(data_class_names) == list(bundle_labels):
        return
    missing = [name for name in bundle_labels if name not in data_class_names]
    extra = [name for name in data_class_names if name not in bundle_labels]
    if missing or extra:
        detail = f"classes only in the bundle: {missing}; classes only in the data: {extra}"
    else:
        position = next(i for i, (a, b) in enumerate(zip(data_class_names, bundle_labels)) if a != b)
        detail = (
            f"same classes in a different order: class {position} is {data_class_names[position]!r} in the data "
            f"but {bundle_labels[position]!r} in the bundle"
        )
    raise LabelMismatchError(
        f"the data set's class names do not match the bundle labels ({detail}); "
        f"bundle labels: {list(bundle_labels)}, data classes: {list(data_class_names)}"
    )


def evaluate(predictor: Predictor, image_set: ImageSet, batch: int = 64, progress: bool = True) -> EvalReport:
    """Run every image of `image_set` through `predictor` and score it against the labels."""
    check_class_names(image_set.class_names, predictor.labels)
    if len(image_set) == 0:
        raise DataError("the evaluation set is empty; choose another --split or give more data")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    started = time.perf_counter()
    chunks: list[np.ndarray] = []
    with tqdm(total=len(image_set), desc="evaluating", unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, len(image_set), batch):
            chunk = image_set.images[start : start + batch]
            chunks.append(predictor.predict(chunk))
            bar.update(len(chunk))
    return classification_report(
        image_set.labels, np.concatenate(chunks), predictor.labels, seconds=time.perf_counter() - started
    )

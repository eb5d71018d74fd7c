"""Classification metrics in numpy: top-1, top-5, per-class accuracy, confusion matrix. A leaf (numpy only).

Training, export checks and the device-side evaluation score predictions with the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TOP_K = 5


@dataclass(frozen=True)
class EvalReport:
    """Classification metrics; confusion_matrix rows are true classes, columns predicted classes."""

    labels: list[str]
    n: int
    top1: float
    top5: float | None  # None when there are fewer than 5 classes
    per_class: dict[str, float | None]  # accuracy (recall) per class; None for a class with no images
    per_class_n: dict[str, int]
    confusion_matrix: np.ndarray  # (C, C) int64
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (plain floats, ints and lists)."""
        return {
            "n": self.n,
            "top1": self.top1,
            "top5": self.top5,
            "labels": list(self.labels),
            "per_class": dict(self.per_class),
            "per_class_n": dict(self.per_class_n),
            "confusion_matrix": self.confusion_matrix.tolist(),
            "seconds": round(self.seconds, 3),
        }


def classification_report(
    labels: np.ndarray, probabilities: np.ndarray, class_names: list[str], seconds: float = 0.0
) -> EvalReport:
    """Metrics from true labels (N,) and class probabilities (N, C); ties go to the lower class index."""
    labels = np.asarray(labels, np.int64)
    probabilities = np.asarray(probabilities)
    num_classes = len(class_names)
    if probabilities.ndim != 2 or probabilities.shape != (len(labels), num_classes):
        raise ValueError(
            f"expected probabilities of shape ({len(labels)}, {num_classes}) for {num_classes} classes, "
            f"got {probabilities.shape}"
        )
    # A stable sort of -p ranks equal probabilities by class index, so rank 0 is exactly np.argmax.
    ranked = np.argsort(-probabilities, axis=1, kind="stable")
    predicted = ranked[:, 0] if len(labels) else np.zeros(0, np.int64)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    counts = confusion.sum(axis=1)
    top5 = None
    if num_classes >= TOP_K:
        top5 = float(np.mean(np.any(ranked[:, :TOP_K] == labels[:, None], axis=1))) if len(labels) else 0.0
    return EvalReport(
        labels=list(class_names),
        n=int(len(labels)),
        top1=float(np.mean(predicted == labels)) if len(labels) else 0.0,
        top5=top5,
        per_class={
            name: float(confusion[i, i] / counts[i]) if counts[i] else None for i, name in enumerate(class_names)
        },
        per_class_n={name: int(count) for name, count in zip(class_names, counts)},
        confusion_matrix=confusion,
        seconds=seconds,
    )

"""Run reports: the training-curves plot and the test confusion matrix (metrics come from edgecnn.metrics)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from edgecnn.report import plot_confusion_matrix


def plot_confusion(matrix, labels: list[str], path: Path) -> Path | None:
    """The test split's confusion matrix as a PNG."""
    return plot_confusion_matrix(np.asarray(matrix), labels, path, title="test confusion matrix")


def plot_history(history_csv: Path, out_path: Path, title: str) -> Path | None:
    """Loss and accuracy per epoch (train and validation) from the CSVLogger file, as a PNG."""
    if not history_csv.is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    with history_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            key = prefix + metric
            if rows and key in rows[0]:
                ax.plot(epochs, [float(r[key]) for r in rows], style, label=key, markersize=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path

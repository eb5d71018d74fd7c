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
    """Loss, accuracy (train and validation) and learning rate per epoch from history.csv, phase boundaries marked."""
    if not history_csv.is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    with history_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    panels = ["loss", "accuracy"] + (["learning_rate"] if rows and "learning_rate" in rows[0] else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, metric in zip(axes[0], panels):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            key = prefix + metric
            if rows and key in rows[0] and all(r[key] for r in rows):
                ax.plot(epochs, [float(r[key]) for r in rows], style, label=key, markersize=3)
        for epoch, phase in phase_starts(rows):
            ax.axvline(epoch - 0.5, color="grey", linestyle=":", linewidth=1)
            ax.annotate(phase, (epoch - 0.5, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10),
                        textcoords="offset points", fontsize=7, color="grey")
        if metric == "learning_rate" and all(float(r[metric] or 0) > 0 for r in rows):
            ax.set_yscale("log")  # a fine-tune phase runs ~100x below the head phase
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left" if metric == "accuracy" else "upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def phase_starts(rows: list[dict]) -> list[tuple[int, str]]:
    """(1-based first epoch, phase name) of every phase in history rows (none for a run without phases)."""
    starts, previous = [], None
    for row in rows:
        phase = row.get("phase")
        if phase and phase != previous:
            starts.append((int(row["epoch"]) + 1, phase))
        previous = phase
    return starts if len(starts) > 1 or (starts and starts[0][1] != "train") else []


def label_caption(soft_label: np.ndarray, labels: list[str], top: int = 2) -> str:
    """'coat' for a one-hot label, 'coat 0.62 + shirt 0.38' for a mixed one (classes under 1 % left out)."""
    order = [i for i in np.argsort(soft_label)[::-1][:top] if soft_label[i] >= 0.01]
    if len(order) == 1 and soft_label[order[0]] > 0.99:
        return labels[order[0]]
    return " + ".join(f"{labels[i]} {soft_label[i]:.2f}" for i in order)


def plot_image_grid(images: np.ndarray, captions: list[str], path: Path, title: str, columns: int = 8) -> Path | None:
    """uint8 RGB images in a grid, each with its caption, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not len(images):
        return None
    rows = -(-len(images) // columns)
    columns = min(columns, len(images))
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(caption, fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def worst_misclassified(labels: np.ndarray, probabilities: np.ndarray, count: int) -> list[tuple[int, int, float]]:
    """(index, predicted class, its probability) of the `count` most confident mistakes, most confident first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:count]
    return [(int(i), int(predicted[i]), float(probabilities[i, predicted[i]])) for i in order]


def plot_worst_misclassified(
    images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, class_names: list[str], path: Path,
    count: int = 24,
) -> Path | None:
    """The most confident test mistakes as a captioned grid ('true → predicted p'), or None when there are none."""
    worst = worst_misclassified(labels, probabilities, count)
    if not worst:
        return None
    captions = [f"{class_names[labels[i]]} → {class_names[p]} {prob:.2f}" for i, p, prob in worst]
    return plot_image_grid(images[[i for i, _, _ in worst]], captions, path, title="most confident test mistakes")


def plot_per_class_accuracy(per_class: dict[str, float | None], path: Path, title: str) -> Path | None:
    """Test accuracy per class as a horizontal bar chart (classes without test images left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [(name, value) for name, value in per_class.items() if value is not None]
    if not scored:
        return None
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(scored) + 1.2))
    ax.barh([n for n, _ in scored][::-1], [v for _, v in scored][::-1], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_xlabel("test accuracy")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""Plain-text tables and the confusion-matrix plot shared by eval, bench, training runs and quickstart. A leaf."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.atomic import temporary_sibling

# (row key, column header, str.format template for the value such as "{:.2f}", "{:.1%}" or "{}")
Column = tuple[str, str, str]
MISSING = "-"


def format_table(rows: list[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Rows as an aligned text table: numbers right-aligned, text left-aligned, missing values as '-'."""
    cells = [[_format_cell(row.get(key), template) for key, _, template in columns] for row in rows]
    numeric = [
        all(isinstance(row.get(key), (int, float, np.number)) or row.get(key) is None for row in rows)
        for key, _, _ in columns
    ]
    headers = [header for _, header, _ in columns]
    widths = [max([len(h), *(len(line[i]) for line in cells)]) for i, h in enumerate(headers)]

    def render(values: list[str]) -> str:
        padded = [v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric)]
        return "  ".join(padded).rstrip()

    lines = [render(headers), "  ".join("-" * w for w in widths)]
    lines += [render(line) for line in cells]
    return "\n".join(lines)


def _format_cell(value: Any, template: str) -> str:
    return MISSING if value is None else template.format(value)


def plot_confusion_matrix(matrix: np.ndarray, labels: Sequence[str], path: str | Path, title: str) -> Path | None:
    """Save a confusion matrix (rows true, columns predicted) as a PNG; None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        print(f"note: matplotlib is not installed, so {path} was not drawn", file=sys.stderr)
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    num_classes = len(labels)
    if matrix.shape != (num_classes, num_classes):
        raise ValueError(
            f"confusion matrix must be ({num_classes}, {num_classes}) for {num_classes} labels, got {matrix.shape}"
        )
    # Colour by row fraction so rare classes stay visible; the cells still show the counts.
    fractions = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = min(4 + 0.45 * num_classes, 24)
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(num_classes), labels=labels, rotation=45, ha="right")
    ax.set_yticks(range(num_classes), labels=labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if num_classes <= 30:  # beyond that the numbers are unreadable anyway
        for (row, col), count in np.ndenumerate(matrix):
            colour = "white" if fractions[row, col] > 0.5 else "black"
            ax.text(col, row, str(int(count)), ha="center", va="center", color=colour, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    try:
        with temporary_sibling(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path

"""Run reports: the most confident test mistakes (ordering and grid), per-class accuracy, the curves' phase marks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.train.reports import (
    label_caption,
    phase_starts,
    plot_history,
    plot_per_class_accuracy,
    plot_worst_misclassified,
    worst_misclassified,
)

PNG = b"\x89PNG\r\n\x1a\n"


def test_worst_misclassified_most_confident_first() -> None:
    labels = np.array([0, 1, 2, 0])
    probabilities = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.1, 0.0, 0.9], [0.0, 0.2, 0.8]])
    assert worst_misclassified(labels, probabilities, 5) == [(3, 2, 0.8), (1, 0, 0.6)]
    assert worst_misclassified(labels, probabilities, 1) == [(3, 2, 0.8)]
    assert worst_misclassified(labels[:1], probabilities[:1], 5) == []


def test_report_plots_are_written(tmp_path: Path) -> None:
    images = np.zeros((4, 8, 8, 3), np.uint8)
    labels = np.array([0, 1, 2, 0])
    probabilities = np.eye(3)[[1, 1, 2, 2]]
    grid = plot_worst_misclassified(images, labels, probabilities, ["a", "b", "c"], tmp_path / "worst.png")
    assert grid is not None and grid.read_bytes()[:8] == PNG
    assert plot_worst_misclassified(images, labels, np.eye(3)[labels], ["a", "b", "c"], tmp_path / "x.png") is None
    bars = plot_per_class_accuracy({"a": 0.5, "b": 1.0, "c": None}, tmp_path / "per_class.png", "t")
    assert bars is not None and bars.read_bytes()[:8] == PNG


def test_curves_mark_phases_and_plot_the_learning_rate(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    history.write_text(
        "epoch,phase,accuracy,learning_rate,loss,val_accuracy,val_loss\n"
        "0,head,0.5,0.01,1.0,0.5,1.0\n1,head,0.6,0.005,0.9,0.6,0.9\n2,finetune,0.7,0.001,0.8,0.7,0.8\n"
    )
    rows = [{"epoch": "0", "phase": "head"}, {"epoch": "1", "phase": "head"}, {"epoch": "2", "phase": "finetune"}]
    assert phase_starts(rows) == [(1, "head"), (3, "finetune")]
    assert phase_starts([{"epoch": "0", "phase": "train"}]) == []  # a single-phase run has no boundary to mark
    assert phase_starts([{"epoch": "0"}]) == []  # history written before phases existed
    assert plot_history(history, tmp_path / "curves.png", "t").read_bytes()[:8] == PNG


def test_label_captions() -> None:
    assert label_caption(np.array([0.0, 1.0, 0.0]), ["a", "b", "c"]) == "b"
    assert label_caption(np.array([0.62, 0.0, 0.38]), ["a", "b", "c"]) == "a 0.62 + c 0.38"

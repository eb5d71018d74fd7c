"""Test-time augmentation in the device runtime: numpy views, averaged probabilities, and `edgecnn eval --tta`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecnn.runtime.tta import VIEWS, default_padding, predict_tta, tta_summary, views


def _batch() -> np.ndarray:
    return np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)


def test_views_keep_shape_and_start_with_the_image() -> None:
    images = _batch()
    counts = {"hflip": 2, "five_crop": 5, "ten_crop": 10}
    for name, count in counts.items():
        got = views(images, name, padding=1)
        assert len(got) == count
        assert all(v.shape == images.shape and v.dtype == np.uint8 and v.flags.c_contiguous for v in got)
        assert np.array_equal(got[0], images)
    flipped = views(images, "hflip")[1]
    assert np.array_equal(flipped[:, :, 0], images[:, :, -1])


def test_five_crop_corners_are_shifted_by_the_padding() -> None:
    images = _batch()
    centre, top_left, top_right, bottom_left, bottom_right = views(images, "five_crop", padding=2)
    assert np.array_equal(top_left[:, 2:, 2:], images[:, :-2, :-2]) and not top_left[:, :2].any()
    assert np.array_equal(bottom_right[:, :-2, :-2], images[:, 2:, 2:]) and not bottom_right[:, -2:].any()
    assert np.array_equal(top_right[:, 2:, :-2], images[:, :-2, 2:])
    assert np.array_equal(bottom_left[:, :-2, 2:], images[:, 2:, :-2])
    ten = views(images, "ten_crop", padding=2)
    assert np.array_equal(ten[6], top_left[:, :, ::-1])


def test_default_padding_and_bad_arguments() -> None:
    assert default_padding(32) == 4 and default_padding(4) == 1
    with pytest.raises(ValueError, match="unknown test-time augmentation 'rot90'"):
        views(_batch(), "rot90")
    with pytest.raises(ValueError, match="at least 1 pixel"):
        views(_batch(), "five_crop", padding=0)
    with pytest.raises(ValueError, match=r"batch \(N, H, W, C\)"):
        views(_batch()[0], "hflip")


def _left_column_predict(images: np.ndarray) -> np.ndarray:
    """A fake classifier: class 1 when the left column is bright, else class 0."""
    bright = images[:, :, 0].mean(axis=(1, 2)) > 127
    return np.stack([~bright, bright], axis=1).astype(np.float32)


def test_probabilities_are_averaged_over_the_views() -> None:
    images = np.zeros((3, 4, 4, 3), np.uint8)
    images[:, :, -1] = 255  # bright right column: the flipped view looks bright on the left
    assert np.allclose(predict_tta(_left_column_predict, images, "hflip"), [[0.5, 0.5]] * 3)


def test_tta_summary_scores_with_and_without_and_the_latency_cost() -> None:
    images = np.zeros((4, 4, 4, 3), np.uint8)
    images[:, :, -1] = 255
    labels = np.array([1, 1, 1, 1])
    summary = tta_summary(lambda x: _left_column_predict(x) * 0.9 + 0.05, images, labels, "hflip")
    # Without TTA every image is class 0; averaged, the tie goes to class 0 too (argmax takes the first).
    assert summary["top1_without"] == 0.0 and summary["view_count"] == 2
    assert summary["tta_p50_ms"] == pytest.approx(2 * summary["p50_ms"], rel=1e-3)
    summary = tta_summary(_left_column_predict, images[:, :, ::-1], labels, "ten_crop", padding=1)
    assert summary["top1_without"] == 1.0 and summary["view_count"] == 10


def test_eval_offers_exactly_the_runtime_views() -> None:
    from edgecnn.commands.eval import TTA_VIEWS

    assert tuple(VIEWS) == TTA_VIEWS


def test_recipe_tta_is_validated() -> None:
    from edgecnn.config import parse_recipe
    from edgecnn.errors import RecipeError

    recipe = {"name": "t", "data": {"source": "builtin", "path": "digits"}, "model": {"name": "tiny_cnn"}}
    assert parse_recipe({**recipe, "train": {"tta": ["hflip"]}}).train.tta == ["hflip"]
    with pytest.raises(RecipeError, match=r"train.tta: unknown test-time augmentation \['flip'\]"):
        parse_recipe({**recipe, "train": {"tta": ["flip"]}})


def test_eval_command_reports_tta(bundles: dict[str, Path], tmp_path: Path, capsys) -> None:
    from edgecnn.cli import main

    assert main(["eval", str(bundles["float32"]), "--tta", "five_crop", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "TTA five_crop (5 views): top-1" in printed and "ms per image" in printed
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["tta"]["top1_without"] == pytest.approx(report["top1"])
    assert report["tta"]["view_count"] == 5 and 0.0 <= report["tta"]["top1"] <= 1.0

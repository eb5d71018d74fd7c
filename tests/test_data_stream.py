"""Image folders larger than data.cache_budget_mb stream from disk: the same pixels as the in-memory path, bounded
memory, unreadable files left out and listed, and a whole training run on a streamed folder."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CLASSES, COLOURS, colour_images
from helpers import train_tiny_run

from edgecnn.data import FileSet, ImageSet, load_splits
from edgecnn.data.folder import load_folder
from edgecnn.data.stream import iter_part

TINY_BUDGET_MB = 1e-3  # a few hundred bytes: every test folder streams


def _folder(root: Path, per_class: int, size: tuple[int, int] = (20, 24)) -> Path:
    """root/<colour>/*.png, `per_class` images per class, nothing unreadable."""
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i, image in enumerate(colour_images(COLOURS[name], per_class, seed=label, size=size)):
            cv2.imwrite(str(root / name / f"{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return root


@pytest.fixture(scope="module")
def clean_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _folder(tmp_path_factory.mktemp("clean"), per_class=20)


def _splits(folder: Path, budget_mb: float, **settings):
    settings = {"resize": "center_crop", "val_fraction": 0.2, "test_fraction": 0.2, "seed": 3, **settings}
    return load_splits("folder", str(folder), 16, cache_budget_mb=budget_mb, workers=2, stream=True, **settings)


def test_a_folder_over_the_budget_streams_the_in_memory_pixels_bit_for_bit(clean_folder: Path) -> None:
    in_memory = _splits(clean_folder, budget_mb=1024)
    streamed = _splits(clean_folder, budget_mb=TINY_BUDGET_MB)
    assert not in_memory.streamed and streamed.streamed
    for split in ("train", "val", "test"):
        memory_part, streamed_part = getattr(in_memory, split), getattr(streamed, split)
        assert isinstance(memory_part, ImageSet) and isinstance(streamed_part, FileSet)
        np.testing.assert_array_equal(streamed_part.labels, memory_part.labels)
        chunks = list(iter_part(streamed_part, batch_size=7))  # a batch size that leaves a short last batch
        np.testing.assert_array_equal(np.concatenate([images for images, _ in chunks]), memory_part.images)
        np.testing.assert_array_equal(np.concatenate([where for _, where in chunks]), np.arange(len(memory_part)))


def test_streamed_training_batches_equal_the_in_memory_ones_with_augmentation(clean_folder: Path) -> None:
    from edgecnn.config import parse_recipe
    from edgecnn.train.batches import training_batches

    recipe = parse_recipe({"name": "s", "data": {"path": str(clean_folder), "image_size": 16},
                           "model": {"name": "tiny_cnn"}, "train": {"batch_size": 8, "epochs": 2},
                           "augment": {"horizontal_flip": True, "translate": 0.1}})
    in_memory = _splits(clean_folder, budget_mb=1024).train
    streamed = _splits(clean_folder, budget_mb=TINY_BUDGET_MB).train
    memory_batches = training_batches(recipe, in_memory.images, in_memory.labels, len(CLASSES))
    streamed_batches = training_batches(recipe, streamed, streamed.labels, len(CLASSES))
    for _epoch in range(2):  # the second epoch reshuffles: batches decoded ahead for the old order are dropped
        for i in range(len(memory_batches)):
            (pixels, labels), (streamed_pixels, streamed_labels) = memory_batches[i], streamed_batches[i]
            np.testing.assert_array_equal(streamed_pixels, pixels)
            np.testing.assert_array_equal(streamed_labels, labels)
        memory_batches.on_epoch_end()
        streamed_batches.on_epoch_end()


def test_an_undecodable_file_is_left_out_of_its_batch_and_logged(image_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    shutil.copytree(image_folder, folder)
    (folder / "blue" / "renamed.png").write_text("a text file named .png\n")  # caught by its header at listing
    splits = _splits(folder, TINY_BUDGET_MB)
    listed = {Path(s.path).name: s.reason for s in splits.skipped}
    assert listed["renamed.png"] == "unreadable image: no image decoder recognises its header"
    assert "notes.txt" in listed and "broken.png" not in listed  # broken.png has a PNG header: found later
    parts = (splits.train, splits.val, splits.test)
    assert sum(len(part) for part in parts) == 3 * 12 + 1
    read = sum(len(where) for part in parts for _, where in iter_part(part, batch_size=5))
    assert read == 3 * 12  # every good image, and not broken.png
    found = list({s.path: s for part in parts for s in part.unreadable.entries()}.values())  # one log per listing
    assert [Path(s.path).name for s in found] == ["broken.png"]
    assert found[0].reason.startswith("unreadable image: not a decodable image")


def test_streaming_memory_stays_below_the_set_while_the_in_memory_path_holds_it(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "big", per_class=1000, size=(32, 32))
    files = _splits(folder, TINY_BUDGET_MB, val_fraction=0.0, test_fraction=0.0).train
    assert isinstance(files, FileSet)
    whole_set = files.decoded_bytes()  # 3,000 images at 16 px

    from edgecnn.train.batches import ImageBatches

    batches = ImageBatches(files, files.labels, len(CLASSES), batch_size=16)
    tracemalloc.start()
    try:
        seen = sum(len(batches[i][1]) for i in range(len(batches)))
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        load_folder(folder, CLASSES, (16, 16), "stretch", workers=2)
        _, in_memory_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == len(files)
    assert in_memory_peak >= whole_set  # the measurement sees a whole-set array when there is one
    # A few batches in flight (16 x 16 x 16 x 3 bytes each, float32 after decoding) and fixed costs, not the set.
    assert streamed_peak < whole_set / 4, (streamed_peak, whole_set)


def test_a_run_on_a_streamed_folder_trains_and_records_what_export_needs(image_folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(image_folder, data)
    recipe = {
        "name": "streamed",
        "data": {"source": "folder", "path": str(data), "image_size": 16, "val_fraction": 0.25,
                 "test_fraction": 0.25, "cache_budget_mb": TINY_BUDGET_MB, "workers": 2},
        "model": {"name": "tiny_cnn", "dropout": 0.0},
        "train": {"epochs": 2, "batch_size": 8, "learning_rate": 0.01},
        "export": {"calibration_images": 12},
    }
    run = train_tiny_run(recipe, tmp_path / "runs")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["streamed"] is True
    skipped = (run / "skipped.txt").read_text()
    assert "broken.png" in skipped and "notes.txt" in skipped and metrics["skipped_files"] == 2
    assert len((run / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs
    # Every readable test image is scored, and broken.png, should the split hold it, is not.
    split = json.loads((run / "split.json").read_text())
    test_files = load_splits(**split["data"], stream=True).test
    broken_in_test = any(Path(path).name == "broken.png" for path in test_files.paths)
    assert sum(metrics["test"]["per_class_n"].values()) == split["sizes"]["test"] - broken_in_test
    with np.load(run / "check_images.npz") as check:
        assert len(check["images"]) == split["check_images"] > 0 and check["images"].shape[1:] == (16, 16, 3)
    with np.load(run / "calibration.npz") as calibration:
        assert 0 < len(calibration["images"]) <= 4 * 12

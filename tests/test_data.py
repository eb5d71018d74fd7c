"""Data sources: folders (with bad files), IDX, built-in sets, and stratified seeded splits."""

import gzip
import os

import cv2
import numpy as np
import pytest

from edgecnn.data import DataSourceError, load_splits
from edgecnn.data.idx import read_idx
from edgecnn.data.split import stratified_split


def write_image(path, value, shape=(20, 24, 3)):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full(shape, value, np.uint8))


@pytest.fixture
def folder(tmp_path):
    """Two classes of 10 PNG/JPEG images each, plus a corrupt JPEG, an empty PNG and a text file."""
    root = tmp_path / "images"
    for i in range(10):
        write_image(root / "cat" / f"{i}.png", 40 + i)
        write_image(root / "dog" / f"{i}.jpg", 200 - i, shape=(30, 30))  # grey → RGB
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "dog" / "empty.png").write_bytes(b"")
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


def test_folder_skips_and_lists_bad_files(folder):
    splits = load_splits("folder", str(folder), image_size=16, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert splits.class_names == ["cat", "dog"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 4, 4)
    reasons = {p.rsplit("/", 1)[-1]: r for p, r in ((s.path, s.reason) for s in splits.skipped)}
    assert set(reasons) == {"broken.jpg", "empty.png", "notes.txt"}
    assert reasons["notes.txt"] == "not an image file (suffix '.txt')"
    assert reasons["empty.png"].startswith("unreadable image") and "empty file" in reasons["empty.png"]
    assert splits.train.images.shape[1:] == (16, 16, 3) and splits.train.images.dtype == np.uint8


def test_folder_splits_are_stratified_and_seeded(folder):
    a = load_splits("folder", str(folder), 16, val_fraction=0.2, test_fraction=0.2, seed=3)
    b = load_splits("folder", str(folder), 16, val_fraction=0.2, test_fraction=0.2, seed=3)
    assert np.array_equal(a.test.images, b.test.images)
    assert a.test.class_counts() == {"cat": 2, "dog": 2}


def test_presplit_folder_uses_its_split_dirs(tmp_path):
    for split, count in (("train", 6), ("val", 2), ("test", 3)):
        for cls in ("a", "b"):
            for i in range(count):
                write_image(tmp_path / split / cls / f"{i}.png", i * 10)
    splits = load_splits("folder", str(tmp_path), 8)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 4, 6)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(DataSourceError, match="does not exist or is not a directory"):
        load_splits("folder", str(tmp_path / "nope"), 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no class sub-directories"):
        load_splits("folder", str(tmp_path / "empty"), 16)


def test_folder_with_only_bad_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    with pytest.raises(DataSourceError, match=r"no readable training images found \(1 files skipped\)"):
        load_splits("folder", str(tmp_path), 16)


def test_idx_roundtrip(tmp_path):
    images = np.arange(4 * 5 * 6, dtype=np.uint8).reshape(4, 5, 6)
    header = bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in images.shape)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
    labels = np.array([0, 1, 0, 1], np.uint8)
    label_header = bytes([0, 0, 0x08, 1]) + (4).to_bytes(4, "big")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(label_header + labels.tobytes())
    assert np.array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    splits = load_splits("idx", str(tmp_path), 8, val_fraction=0.0, test_fraction=0.5, class_names=["x", "y"])
    assert (len(splits.train), len(splits.test), splits.class_names) == (2, 2, ["x", "y"])


def test_idx_bad_magic(tmp_path):
    (tmp_path / "f").write_bytes(b"\x12\x34\x56\x78")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "f")


def test_debian_fashion_mnist_when_installed():
    root = "/usr/share/datasets/fashion-mnist"
    if not os.path.isdir(root):
        pytest.skip("Debian package dataset-fashion-mnist not installed (apt-get install dataset-fashion-mnist)")
    splits = load_splits("idx", root, 28, max_per_class=20)
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (200, 200)


def test_builtin_sets():
    splits = load_splits("builtin", "fashion-mnist-subset", 32)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (7200, 800, 1500)
    assert splits.class_names[0] == "t-shirt_top" and splits.train.class_counts()["bag"] == 720
    digits = load_splits("builtin", "digits", 16)
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    assert digits.train.images.max() > 200  # rescaled from 0..16
    with pytest.raises(ValueError, match="unknown built-in data set 'nope'"):
        load_splits("builtin", "nope", 16)


def test_stratified_split_proportions():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    rest, val = stratified_split(labels, (0.1,), seed=0)
    assert np.bincount(labels[val]).tolist() == [5, 3, 2]
    assert len(np.intersect1d(rest, val)) == 0 and len(rest) + len(val) == 100

"""Data sources: folders (with bad files), IDX, built-in sets, and stratified seeded splits."""

import gzip
import os

import cv2
import numpy as np
import pytest

from edgecnn.data import SOURCES, DataSourceError, Source, guess_source, load_splits
from edgecnn.data.idx import read_idx
from edgecnn.data.split import stratified_split
from edgecnn.errors import DataError


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
    assert DataSourceError is DataError  # the old name still catches
    with pytest.raises(DataError, match="nope does not exist; expected a directory"):
        load_splits("folder", str(tmp_path / "nope"), 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no class sub-directories found \(0 files and no folders\)"):
        load_splits("folder", str(tmp_path / "empty"), 16)


def test_folder_with_only_bad_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "y.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"no readable images found in train \(2 files skipped: 1× not an image file, "
                                        r"1× unreadable image; first: .*a/x.txt \(not an image file"):
        load_splits("folder", str(tmp_path), 16)


def test_grey_rgba_and_16bit_images_of_any_size_keep_their_pixels(tmp_path):
    value = 150
    images = {
        "grey.png": np.full((3, 400), value, np.uint8),
        "rgba.png": np.dstack([np.full((64, 7, 3), value, np.uint8), np.zeros((64, 7), np.uint8)]),
        "deep_grey.png": np.full((1, 1), value * 257, np.uint16),
        "deep_colour.png": np.full((90, 20, 3), value * 257, np.uint16),
    }
    for name, pixels in images.items():
        write_image(tmp_path / "a" / name, 0, shape=(2, 2))  # replaced below; creates the folder
        cv2.imwrite(str(tmp_path / "a" / name), pixels)
        write_image(tmp_path / "b" / name, 30, shape=(5, 5))
    splits = load_splits("folder", str(tmp_path), 16, resize="center_crop", val_fraction=0.0, test_fraction=0.0)
    assert splits.skipped == [] and len(splits.train) == 8
    assert np.all(splits.train.images[splits.train.labels == 0] == value)  # alpha dropped, 16-bit → top byte


def test_one_class_is_refused(tmp_path):
    for i in range(5):
        write_image(tmp_path / "only" / f"{i}.png", i)
    with pytest.raises(DataError, match=r"found 1 class \('only'\); a classifier needs at least 2 classes"):
        load_splits("folder", str(tmp_path), 16)
    with pytest.raises(DataError, match="built-in set 'digits' has 10 classes, but 2 names given"):
        load_splits("builtin", "digits", 8, class_names=["zero", "one"])


def test_class_folders_differing_only_in_case_are_refused(tmp_path):
    for name in ("Dog", "cat", "dog", "CAT"):
        write_image(tmp_path / name / "0.png", 1)
    with pytest.raises(DataError, match="class folders 'CAT' and 'cat'; 'Dog' and 'dog' differ only in case"):
        load_splits("folder", str(tmp_path), 16)


def test_symlink_loops_are_refused_not_followed_forever(tmp_path):
    for name in ("a", "b"):
        for i in range(4):
            write_image(tmp_path / name / "deep" / f"{i}.png", i)
    os.symlink(tmp_path / "a", tmp_path / "a" / "deep" / "up")
    with pytest.raises(DataError, match=r"symlink loop in the data folder: .*a/deep/up points back to .*/a; remove"):
        load_splits("folder", str(tmp_path), 16)


def test_symlinked_class_folders_are_followed(tmp_path):
    (tmp_path / "data").mkdir()
    for name in ("a", "b"):
        for i in range(4):
            write_image(tmp_path / "elsewhere" / name / f"{i}.png", i)
        os.symlink(tmp_path / "elsewhere" / name, tmp_path / "data" / name)
    splits = load_splits("folder", str(tmp_path / "data"), 8, val_fraction=0.0, test_fraction=0.0)
    assert splits.train.class_counts() == {"a": 4, "b": 4}


def test_files_outside_class_folders_are_listed_as_skipped(tmp_path):
    for split in ("train", "val"):
        for name in ("a", "b"):
            write_image(tmp_path / split / name / "0.png", 1)
    write_image(tmp_path / "val" / "c" / "0.png", 1)  # a class training does not have
    write_image(tmp_path / "train" / "loose.png", 1)
    os.symlink(tmp_path / "missing.png", tmp_path / "train" / "a" / "dangling.png")
    splits = load_splits("folder", str(tmp_path), 8, test_fraction=0.0)
    reasons = {s.path.removeprefix(str(tmp_path) + "/"): s.reason for s in splits.skipped}
    assert reasons == {
        "train/a/dangling.png": "broken symlink or not a regular file",
        "train/loose.png": "not in a class folder",
        "val/c": "folder of a class that training does not have",
    }


def test_a_split_asked_for_but_left_empty_is_refused(tmp_path):
    for name in ("a", "b"):
        for i in range(3):
            write_image(tmp_path / name / f"{i}.png", i)
    with pytest.raises(DataError, match=r"the test split is empty: test_fraction 0.1 .* needs at least 6 images"):
        load_splits("folder", str(tmp_path), 8, val_fraction=0.0, test_fraction=0.1)
    splits = load_splits("folder", str(tmp_path), 8, val_fraction=0.0, test_fraction=0.0)  # not asked for: fine
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 0, 0)


def test_a_class_left_without_training_images_is_refused(tmp_path):
    for name, count in (("a", 10), ("b", 2)):
        for i in range(count):
            write_image(tmp_path / name / f"{i}.png", i)
    with pytest.raises(DataError, match=r"val_fraction 0.45 and test_fraction 0.44 take every image of class 'b'"):
        load_splits("folder", str(tmp_path), 8, val_fraction=0.45, test_fraction=0.44)
    with pytest.raises(DataError, match=r"class 'c' has no readable images in train"):
        load_splits("folder", str(tmp_path), 8, class_names=["a", "b", "c"])


def test_every_source_detects_its_paths(tmp_path):
    assert all(isinstance(source, Source) for source in SOURCES.values())
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"")
    (tmp_path / "images").mkdir()
    assert guess_source("digits") == "builtin"
    assert guess_source(str(tmp_path)) == "idx"
    assert guess_source(str(tmp_path / "images")) == "folder"
    with pytest.raises(DataError, match=r"nope does not exist; expected one of builtin: a built-in data set name"):
        guess_source(str(tmp_path / "nope"))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte is a file, not a directory"):
        guess_source(str(tmp_path / "train-images-idx3-ubyte"))


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
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "f")
    (tmp_path / "g.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match=r"g.gz: cannot read IDX file"):
        read_idx(tmp_path / "g.gz")


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
    with pytest.raises(DataError, match="unknown built-in data set 'nope'"):
        load_splits("builtin", "nope", 16)


def test_stratified_split_proportions():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    rest, val = stratified_split(labels, (0.1,), seed=0)
    assert np.bincount(labels[val]).tolist() == [5, 3, 2]
    assert len(np.intersect1d(rest, val)) == 0 and len(rest) + len(val) == 100

"""The data sources, in one table: how each loads a path, and how to recognise a path of its kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.data.builtin import BUILTIN_SETS, load_builtin
from edgecnn.data.dataset import ImageSet, Skipped
from edgecnn.data.folder import SPLIT_DIRS, class_names_of, has_split_dirs, list_folder, load_folder
from edgecnn.data.idx import find_idx_pair, read_idx
from edgecnn.data.stream import FileSet
from edgecnn.errors import DataError
from edgecnn.runtime.preprocess import ResizeMode, fit_batch

Parts = dict[str, ImageSet]
SourceLoader = Callable[[str, tuple[int, int], ResizeMode, "list[str] | None"], tuple[Parts, list[str], list[Skipped]]]
# The same, listing files to stream (FileSet parts) instead of decoding them; takes the decoding thread count too.
FileLister = Callable[[str, tuple[int, int], ResizeMode, "list[str] | None", "int | None"],
                      tuple[dict[str, FileSet], list[str], list[Skipped]]]


@dataclass(frozen=True)
class Source:
    """A data source: its loader (path → split parts, class names, skipped files) and a test for its paths."""

    load: SourceLoader
    detects: Callable[[str], bool]
    looks_like: str  # what a path of this source is, for error messages
    list_files: FileLister | None = None  # sources of image files can stream; the others are arrays already


def _directory(path: str) -> Path:
    root = Path(path)
    if not root.is_dir():
        what = "is a file, not a directory" if root.exists() else "does not exist"
        raise DataError(f"data path {root} {what}; expected a directory")
    return root


def _from_folder(path: str, size: tuple[int, int], resize: ResizeMode, class_names: list[str] | None):
    return _folder_parts(path, class_names, lambda root, names: load_folder(root, names, size, resize))


def _files_in_folder(path: str, size: tuple[int, int], resize: ResizeMode, class_names: list[str] | None,
                     workers: int | None = None):
    return _folder_parts(path, class_names, lambda root, names: list_folder(root, names, size, resize, workers))


def _folder_parts(path: str, class_names: list[str] | None, read: Callable[[Path, list[str]], tuple]):
    """root/<class>/ or root/{train,val,test}/<class>/, each part read with `read(folder, class names)`."""
    root = _directory(path)
    top = root / "train" if has_split_dirs(root) else root
    names = list(class_names) if class_names else class_names_of(top)
    parts: dict = {}
    skipped: list[Skipped] = []
    splits = [s for s in SPLIT_DIRS if (root / s).is_dir()] if top != root else ["train"]
    for split in splits:
        found, skipped_here = read(root / split if top != root else root, names)
        parts[split] = found
        skipped += skipped_here
    return parts, names, skipped


def _from_idx(path: str, size: tuple[int, int], resize: ResizeMode, class_names: list[str] | None):
    root = _directory(path)
    parts: Parts = {}
    names: list[str] = []
    for split in ("train", "test"):
        pair = find_idx_pair(root, split)
        if pair is None:
            if split == "train":
                raise DataError(f"{root}: no train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz]")
            continue
        images, labels = read_idx(pair[0]), read_idx(pair[1]).astype(np.int64)
        if len(images) != len(labels):
            raise DataError(f"{pair[0]} holds {len(images)} images but {pair[1]} holds {len(labels)} labels")
        names = list(class_names) if class_names else [str(i) for i in range(int(labels.max(initial=0)) + 1)]
        if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
            raise DataError(
                f"{pair[1]}: labels range {labels.min()}..{labels.max()}, but there are {len(names)} class names"
            )
        parts[split] = ImageSet(fit_batch(images, size, resize), labels, names)
    return parts, names, []


def _from_builtin(path: str, size: tuple[int, int], resize: ResizeMode, class_names: list[str] | None):
    arrays = load_builtin(path)
    names = list(class_names) if class_names else arrays.class_names
    if len(names) != len(arrays.class_names):
        raise DataError(f"built-in set {path!r} has {len(arrays.class_names)} classes, but {len(names)} names given")
    parts: Parts = {"train": ImageSet(fit_batch(arrays.train_images, size, resize), arrays.train_labels, names)}
    if arrays.test_images is not None:
        parts["test"] = ImageSet(fit_batch(arrays.test_images, size, resize), arrays.test_labels, names)
    return parts, names, []


def _is_idx_dir(path: str) -> bool:
    return Path(path).is_dir() and find_idx_pair(Path(path), "train") is not None


# In guessing order: a built-in name wins over a folder of that name; IDX files over an image folder.
SOURCES: dict[str, Source] = {
    "builtin": Source(_from_builtin, lambda path: path in BUILTIN_SETS,
                      f"a built-in data set name ({', '.join(BUILTIN_SETS)})"),
    "idx": Source(_from_idx, _is_idx_dir, "a directory of MNIST-style IDX files"),
    "folder": Source(_from_folder, lambda path: Path(path).is_dir(), "an image folder (<class>/<images>)",
                     list_files=_files_in_folder),
}


def guess_source(path: str) -> str:
    """The name of the first source in SOURCES that recognises `path`; DataError when none does."""
    for name, source in SOURCES.items():
        if source.detects(path):
            return name
    what = "is a file, not a directory" if Path(path).exists() else "does not exist"
    expected = "; ".join(f"{name}: {source.looks_like}" for name, source in SOURCES.items())
    raise DataError(f"data path {path} {what}; expected one of {expected}")

"""Image-folder data sets: root/<class>/*.jpg, or root/{train,val,test}/<class>/*.jpg."""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from edgecnn.data.dataset import ImageSet, Skipped
from edgecnn.data.stream import FileSet, decode_file, default_workers
from edgecnn.errors import DataError
from edgecnn.runtime.preprocess import IMAGE_SUFFIXES, ResizeMode

SPLIT_DIRS = ("train", "val", "test")


def has_split_dirs(root: Path) -> bool:
    """True when the tree is already split into train/ (and optionally val/, test/) sub-trees."""
    return (root / "train").is_dir()


def class_names_of(root: Path) -> list[str]:
    """Sorted names of the class sub-directories of `root`; DataError when there are none or two differ by case."""
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        files = [p for p in root.iterdir() if p.is_file()]
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        found = f"{len(images)} image files directly in it" if images else f"{len(files)} files and no folders"
        raise DataError(
            f"{root}: no class sub-directories found ({found}); expected {root}/<class>/<image files>, "
            "one folder per class"
        )
    by_folded: dict[str, list[str]] = defaultdict(list)
    for name in names:
        by_folded[name.casefold()].append(name)
    clashes = [group for group in by_folded.values() if len(group) > 1]
    if clashes:
        shown = "; ".join(" and ".join(repr(name) for name in group) for group in clashes)
        raise DataError(
            f"{root}: class folders {shown} differ only in case; merge or rename them (they would be separate "
            "classes here but one folder on macOS and Windows)"
        )
    return names


def list_images(root: Path, class_names: list[str]) -> tuple[list[tuple[Path, int]], list[Skipped]]:
    """(image file, label) under root/<class>/ in sorted order, and the files and folders left out with why.

    Follows symlinks, but refuses a directory reached twice (a symlink loop, or two classes sharing one folder):
    both would read the same images again, possibly under another label.
    """
    files: list[tuple[Path, int]] = []
    skipped: list[Skipped] = []
    seen: dict[tuple[int, int], Path] = {_identity(root): root}
    for label, name in enumerate(class_names):
        class_dir = root / name
        if not class_dir.is_dir():
            continue  # a class absent from one split (e.g. no test images) is checked by the caller
        for path in _walk_files(class_dir, seen):
            if not path.is_file():
                skipped.append(Skipped(str(path), "broken symlink or not a regular file"))
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(Skipped(str(path), f"not an image file (suffix {path.suffix or 'none'!r})"))
            else:
                files.append((path, label))
    known = set(class_names)
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name in known:
            continue
        reason = "folder of a class that training does not have" if entry.is_dir() else "not in a class folder"
        skipped.append(Skipped(str(entry), reason))
    return files, skipped


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def _walk_files(top: Path, seen: dict[tuple[int, int], Path]) -> list[Path]:
    """Every non-directory entry under `top`, sorted as Path objects; DataError on a directory reached twice."""
    found: list[Path] = []
    for directory, subdirs, names in os.walk(top, followlinks=True, onerror=_raise_walk_error):
        here = Path(directory)
        identity = _identity(here)
        if identity in seen:
            first = seen[identity]
            if first in here.parents:
                raise DataError(f"symlink loop in the data folder: {here} points back to {first}; remove the link")
            raise DataError(
                f"{here} and {first} are the same folder (through a symlink), so its images would be read twice; "
                "remove the link"
            )
        seen[identity] = here
        found += [here / name for name in names]
        subdirs.sort()
    return sorted(found)


def _raise_walk_error(error: OSError) -> None:
    raise DataError(f"cannot read {error.filename}: {error.strerror}") from error


def list_folder(
    root: Path, class_names: list[str], size: tuple[int, int], resize: ResizeMode, workers: int | None = None
) -> tuple[FileSet, list[Skipped]]:
    """The images under root/<class>/ as a FileSet to stream, without decoding or opening them; files that are
    not images by their suffix skipped and listed."""
    files, skipped = list_images(root, class_names)
    paths = np.asarray([str(path) for path, _ in files], dtype=object)
    labels = np.asarray([label for _, label in files], np.int64)
    return FileSet(paths, labels, class_names, size, resize, workers), skipped


def load_folder(
    root: Path, class_names: list[str], size: tuple[int, int], resize: ResizeMode, workers: int | None = None
) -> tuple[ImageSet, list[Skipped]]:
    """Decode every image under root/<class>/ at the model size; skip and list what is not a readable image."""
    files, skipped = list_images(root, class_names)
    images: list[np.ndarray] = []
    labels: list[int] = []
    # OpenCV releases the GIL while decoding, so threads give real parallelism here.
    with ThreadPoolExecutor(max_workers=default_workers(workers)) as pool:
        results = pool.map(lambda item: decode_file(item[0], size, resize), files)
        for (_, label), result in tqdm(
            zip(files, results), total=len(files), desc=f"reading {root.name}", unit="img", leave=False
        ):
            if isinstance(result, Skipped):
                skipped.append(result)
            else:
                images.append(result)
                labels.append(label)
    array = np.stack(images) if images else np.zeros((0, *size, 3), np.uint8)
    return ImageSet(array, np.asarray(labels, np.int64), class_names), skipped

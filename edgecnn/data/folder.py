"""Image-folder data sets: root/<class>/*.jpg, or root/{train,val,test}/<class>/*.jpg."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from edgecnn.data.dataset import ImageSet, Skipped
from edgecnn.runtime.preprocess import IMAGE_SUFFIXES, ImageDecodeError, ResizeMode, fit_image, read_image

SPLIT_DIRS = ("train", "val", "test")


def has_split_dirs(root: Path) -> bool:
    """True when the tree is already split into train/ (and optionally val/, test/) sub-trees."""
    return (root / "train").is_dir()


def class_names_of(root: Path) -> list[str]:
    """Sorted names of the class sub-directories of `root`."""
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise FileNotFoundError(f"{root}: no class sub-directories found; expected {root}/<class>/<image files>")
    return names


def load_folder(
    root: Path, class_names: list[str], size: tuple[int, int], resize: ResizeMode, workers: int = 4
) -> tuple[ImageSet, list[Skipped]]:
    """Decode every image under root/<class>/ at the model size; skip and list what is not a readable image."""
    files: list[tuple[Path, int]] = []
    skipped: list[Skipped] = []
    for label, name in enumerate(class_names):
        class_dir = root / name
        if not class_dir.is_dir():
            continue  # a class absent from one split (e.g. no test images) is not an error
        for path in sorted(class_dir.rglob("*")):
            if not path.is_file():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(Skipped(str(path), f"not an image file (suffix {path.suffix or 'none'!r})"))
                continue
            files.append((path, label))

    def decode(item: tuple[Path, int]) -> np.ndarray | Skipped:
        path, _ = item
        try:
            return fit_image(read_image(path), size, resize)
        except (ImageDecodeError, ValueError, OSError) as exc:
            return Skipped(str(path), f"unreadable image: {exc}")

    images: list[np.ndarray] = []
    labels: list[int] = []
    # OpenCV releases the GIL while decoding, so threads give real parallelism here.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(decode, files)
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

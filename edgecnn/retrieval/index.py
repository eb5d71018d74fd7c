"""Indexing: embed a folder of images (or an image set) through an Embedder into a Gallery, with progress."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from edgecnn.data import Skipped
from edgecnn.data.folder import class_names_of, list_images
from edgecnn.errors import DataError, ImageDecodeError
from edgecnn.retrieval.gallery import NO_LABEL, Gallery, bundle_fingerprint
from edgecnn.runtime import Embedder, fit_image, read_image
from edgecnn.runtime.preprocess import IMAGE_SUFFIXES

BATCH = 64


def embed_images(embedder: Embedder, images: np.ndarray, batch: int = BATCH, progress: bool = True) -> np.ndarray:
    """Embeddings (N, D) of uint8 images already at the embedder's size, in batches with a progress bar."""
    chunks = [np.zeros((0, embedder.embedding_size), np.float32)]
    with tqdm(total=len(images), desc="embedding", unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, len(images), batch):
            chunks.append(embedder.embed(images[start : start + batch]))
            bar.update(len(chunks[-1]))
    return np.concatenate(chunks)


def folder_files(root: str | Path) -> tuple[list[tuple[Path, int]], list[str], list[Skipped]]:
    """(image file, label) pairs, class names and skipped entries of `root`: root/<class>/* when it has class
    sub-directories, else the image files directly in `root` (unlabelled)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory; expected a folder of images (or of class folders of images)")
    if any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        names = class_names_of(root)
        files, skipped = list_images(root, names)
        return files, names, skipped
    files, skipped = [], []
    for path in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            files.append((path, NO_LABEL))
        else:
            skipped.append(Skipped(str(path), f"not an image file (suffix {path.suffix or 'none'!r})"))
    return files, [], skipped


def _decoded(files: Iterable[tuple[Path, int]], size: tuple[int, int], resize: str, skipped: list[Skipped]
             ) -> Iterator[tuple[np.ndarray, int, str]]:
    for path, label in files:
        try:
            yield fit_image(read_image(path), size, resize), label, str(path)  # type: ignore[arg-type]
        except (ImageDecodeError, OSError) as exc:
            skipped.append(Skipped(str(path), f"unreadable image: {str(exc).removeprefix(f'{path}: ')}"))


def build_gallery(
    embedder: Embedder, root: str | Path, batch: int = BATCH, progress: bool = True
) -> tuple[Gallery, list[Skipped]]:
    """Embed every readable image under `root` (read in batches, never all at once); list the files skipped."""
    files, class_names, skipped = folder_files(root)
    vectors, labels, paths = [np.zeros((0, embedder.embedding_size), np.float32)], [], []
    pending: list[np.ndarray] = []

    def flush() -> None:
        if pending:
            vectors.append(embedder.embed(np.stack(pending)))
            pending.clear()

    decoded = _decoded(files, embedder.image_size, embedder.manifest.preprocessing.resize, skipped)
    for image, label, path in tqdm(decoded, total=len(files), desc="indexing", unit="img", disable=not progress,
                                   leave=False):
        pending.append(image)
        labels.append(label)
        paths.append(path)
        if len(pending) == batch:
            flush()
    flush()
    if not paths:
        raise DataError(f"{root}: no readable images to index ({len(skipped)} files skipped)")
    gallery = Gallery(np.concatenate(vectors), np.asarray(labels, np.int64), paths, class_names,
                      bundle_fingerprint(embedder))
    return gallery, skipped

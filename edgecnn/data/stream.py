"""Image folders too large to decode into memory: a list of files per split, decoded in batches by worker threads.

A `FileSet` is the streamed counterpart of an `ImageSet`: the same labels, `subset` and `class_counts`, but pixels
come from `decode`, which runs the in-memory path's own `decode_file` (OpenCV + `fit_image`) on a thread pool, so a
streamed image is bitwise the image `load_folder` would have kept. `Prefetcher` decodes the next few batches while
the current one trains, so memory holds a few batches, whatever the size of the set.

Unreadable files: before streaming, each file's header is checked (`cv2.haveImageReader`, a few bytes per file),
so files that are not images are skipped and listed before training, as the in-memory path does. A file whose
header is fine but whose data does not decode is found only when a batch reaches it: it is left out of that batch
(the batch is one image shorter) and recorded once in the set's `UnreadableLog`, which the run appends to
skipped.txt. Such a file still counted when the splits were cut, so a streamed split can differ from the in-memory
one by those files.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgecnn.data.dataset import ImageSet, Skipped
from edgecnn.data.split import per_class_limit
from edgecnn.errors import ImageDecodeError
from edgecnn.runtime.preprocess import ResizeMode, fit_image, read_image

MB = 2**20
DEFAULT_CACHE_BUDGET_MB = 1024  # decoded images above this stream from disk (the recipe's data.cache_budget_mb)


def default_workers(workers: int | None) -> int:
    """`workers`, or one decoding thread per CPU core when unset."""
    return workers or os.cpu_count() or 1


def decode_file(path: str | Path, size: tuple[int, int], resize: ResizeMode) -> np.ndarray | Skipped:
    """One file at the model size (uint8 RGB), or why it was skipped: the decode both data paths share."""
    try:
        return fit_image(read_image(path), size, resize)
    except (ImageDecodeError, OSError) as exc:
        return Skipped(str(path), f"unreadable image: {str(exc).removeprefix(f'{path}: ')}")


def without_bad_headers(files: FileSet) -> tuple[FileSet, list[Skipped]]:
    """`files` less those whose first bytes no OpenCV decoder recognises (empty files, other formats renamed to
    .png), and those as skipped."""
    good = np.asarray([cv2.haveImageReader(str(path)) for path in files.paths], bool)
    skipped = [Skipped(str(path), "unreadable image: no image decoder recognises its header")
               for path in files.paths[~good]]
    return files.subset(np.flatnonzero(good)), skipped


class UnreadableLog:
    """Files that failed to decode while streaming, each recorded once; shared by every subset of one listing."""

    def __init__(self) -> None:
        self._found: dict[str, Skipped] = {}
        self._lock = threading.Lock()

    def add(self, skipped: Skipped) -> None:
        with self._lock:
            self._found.setdefault(skipped.path, skipped)

    def entries(self) -> list[Skipped]:
        with self._lock:
            return sorted(self._found.values(), key=lambda s: s.path)


@dataclass
class FileSet:
    """Image files (N,) with labels (N,) indexing `class_names`, decoded at `size` with `resize` when read."""

    paths: np.ndarray  # str
    labels: np.ndarray
    class_names: list[str]
    size: tuple[int, int]
    resize: ResizeMode = "stretch"
    workers: int | None = None
    unreadable: UnreadableLog = field(default_factory=UnreadableLog)

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.labels):
            raise ValueError(f"{len(self.paths)} paths but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> FileSet:
        return FileSet(self.paths[indices], self.labels[indices], self.class_names, self.size, self.resize,
                       self.workers, self.unreadable)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(count) for name, count in zip(self.class_names, counts)}

    def decoded_bytes(self) -> int:
        """What the whole set would take in memory as uint8 RGB at the model size."""
        return len(self) * self.size[0] * self.size[1] * 3

    def decode(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(images of the decodable files among `indices`, boolean mask of which those are); failures logged."""
        workers = default_workers(self.workers)
        with ThreadPoolExecutor(workers) as pool:
            return _collect(self, _submit(pool, workers, self, indices))


def _submit(pool: ThreadPoolExecutor, workers: int, files: FileSet, indices: np.ndarray) -> list[Future]:
    """One decoding job per worker, each a contiguous chunk of `indices` (a job per image costs more than a
    small image takes to decode)."""
    chunks = np.array_split(np.asarray(indices, np.int64), min(len(indices), workers) or 1)
    return [pool.submit(_decode_chunk, files, chunk) for chunk in chunks]


def _decode_chunk(files: FileSet, indices: np.ndarray) -> list[np.ndarray | Skipped]:
    return [decode_file(files.paths[i], files.size, files.resize) for i in indices]


def _collect(files: FileSet, jobs: list[Future]) -> tuple[np.ndarray, np.ndarray]:
    """The jobs' images stacked in order and the kept mask; the files that failed go to the set's log."""
    results = [result for job in jobs for result in job.result()]
    kept = np.asarray([not isinstance(r, Skipped) for r in results], bool)
    for result in results:
        if isinstance(result, Skipped):
            files.unreadable.add(result)
    images = [r for r in results if not isinstance(r, Skipped)]
    return (np.stack(images) if images else np.zeros((0, *files.size, 3), np.uint8)), kept


Part = ImageSet | FileSet


def read_part(part: Part, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(images, mask of the readable ones) of `indices` of an in-memory or streamed part."""
    if isinstance(part, FileSet):
        return part.decode(indices)
    return part.images[indices], np.ones(len(indices), bool)


def iter_part(part: Part, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(images, their positions in `part`) a batch at a time, in order; streamed parts decode ahead and skip
    unreadable files."""
    batches = [np.arange(start, min(start + batch_size, len(part))) for start in range(0, len(part), batch_size)]
    if not isinstance(part, FileSet):
        yield from ((part.images[batch], batch) for batch in batches)
        return
    with Prefetcher(part) as prefetcher:
        for i, batch in enumerate(batches):
            images, kept = prefetcher.get(i, batch, ((j, batches[j]) for j in range(i + 1, len(batches))))
            yield images, batch[kept]


def in_memory_sample(part: Part, budget_bytes: int, seed: int) -> ImageSet:
    """`part` itself when in memory; else a class-stratified sample of it decoded into at most `budget_bytes`."""
    if isinstance(part, ImageSet):
        return part
    per_image = part.size[0] * part.size[1] * 3
    per_class = max(1, budget_bytes // per_image // max(1, len(part.class_names)))
    chosen = per_class_limit(part.labels, per_class, seed) if len(part) else np.zeros(0, np.int64)
    images, kept = part.decode(chosen)
    return ImageSet(images, part.labels[chosen][kept], part.class_names)


class Prefetcher:
    """Decodes the next `ahead` batches of a FileSet on worker threads while the caller uses the current one.

    Batches are keyed by the caller (e.g. (epoch, index)); a batch asked for that was not prefetched is decoded
    then. Memory: `ahead` + 1 batches of decoded images.
    """

    def __init__(self, files: FileSet, ahead: int = 4):
        self.files = files
        self.ahead = ahead
        self._workers = default_workers(files.workers)
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="edgecnn-decode")
        self._pending: dict[object, list[Future]] = {}

    def get(
        self, key: object, indices: np.ndarray, upcoming: Iterable[tuple[object, np.ndarray]] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """(images, kept mask) of batch `key`; starts decoding the first `ahead` of `upcoming` (key, indices)."""
        jobs = self._pending.pop(key, None) or _submit(self._pool, self._workers, self.files, indices)
        for upcoming_key, upcoming_indices in upcoming:
            if len(self._pending) >= self.ahead:
                break
            if upcoming_key not in self._pending:
                self._pending[upcoming_key] = _submit(self._pool, self._workers, self.files, upcoming_indices)
        return _collect(self.files, jobs)

    def forget(self) -> None:
        """Drop the batches decoded ahead (their keys will not be asked for: e.g. the order was reshuffled)."""
        for jobs in self._pending.values():
            for job in jobs:
                job.cancel()
        self._pending.clear()

    def close(self) -> None:
        self.forget()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

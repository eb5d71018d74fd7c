"""Data sources → train/val/test ImageSets of uint8 RGB at the model size (numpy and OpenCV only)."""

from __future__ import annotations

from edgecnn.data.builtin import BUILTIN_SETS
from edgecnn.data.checks import check_class_count, check_cut, check_provided, check_readable
from edgecnn.data.dataset import DataSplits, ImageSet, Skipped
from edgecnn.data.sources import SOURCES, Source, guess_source
from edgecnn.data.split import per_class_limit, stratified_split
from edgecnn.data.stream import DEFAULT_CACHE_BUDGET_MB, MB, FileSet, without_bad_headers
from edgecnn.errors import DataError, ImageDecodeError, LabelMismatchError
from edgecnn.runtime.preprocess import ResizeMode

__all__ = [
    "BUILTIN_SETS", "SOURCES", "DataError", "DataSourceError", "DataSplits", "FileSet", "ImageDecodeError", "ImageSet",
    "LabelMismatchError", "Skipped", "Source", "guess_source", "load_splits",
]

DataSourceError = DataError  # the name before edgecnn.errors existed


def load_splits(
    source: str,
    path: str,
    image_size: int,
    resize: ResizeMode = "stretch",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    class_names: list[str] | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
    cache_budget_mb: float = DEFAULT_CACHE_BUDGET_MB,
    workers: int | None = None,
    stream: bool = False,
) -> DataSplits:
    """Load `path` with the named source and return seeded, stratified train/val/test splits.

    With `stream`, an image folder whose decoded images (N x image_size² x 3 bytes) exceed `cache_budget_mb` is
    not decoded: its parts are FileSets, read in batches by `workers` threads (edgecnn.data.stream). Callers that
    need arrays leave `stream` off and always get ImageSets.

    Raises DataError when the data cannot train or evaluate a classifier: fewer than two classes, a class without
    readable images, or a split that a nonzero fraction asks for left empty.
    """
    try:
        spec = SOURCES[source]
    except KeyError:
        raise DataError(f"unknown data source {source!r}; available: {', '.join(SOURCES)}") from None
    origin = f"{source}:{path}" if source != "folder" else path
    size = (image_size, image_size)
    parts = None
    if stream and spec.list_files is not None:
        parts, names, skipped = spec.list_files(path, size, resize, class_names, workers)
        if sum(part.decoded_bytes() for part in parts.values()) <= cache_budget_mb * MB:
            parts = None  # it fits: decode it all once, as without streaming
        else:
            for split, part in parts.items():
                parts[split], bad = without_bad_headers(part)
                skipped += bad
    if parts is None:
        parts, names, skipped = spec.load(path, size, resize, class_names)
    check_class_count(origin, names)
    if max_per_class:
        parts = {k: v.subset(per_class_limit(v.labels, max_per_class, seed)) for k, v in parts.items()}
    check_readable(origin, "train", parts["train"], skipped)
    check_provided(origin, parts)
    # Cut validation/test out of train where the source did not provide them.
    missing = {split: fraction for split, fraction in (("val", val_fraction), ("test", test_fraction))
               if split not in parts}
    if missing:
        before = parts["train"]
        rest, *cut = stratified_split(before.labels, tuple(missing.values()), seed)
        parts.update({split: before.subset(indices) for split, indices in zip(missing, cut)}, train=before.subset(rest))
        check_cut(origin, before, parts, missing)
    return DataSplits(parts["train"], parts["val"], parts["test"], names, skipped, source=f"{source}:{path}")

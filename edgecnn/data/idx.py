"""IDX files (the MNIST / Fashion-MNIST layout), plain or gzip-compressed."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from edgecnn.errors import DataError

# IDX type codes → numpy dtypes (big-endian where it matters).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# Standard file stems of the MNIST family.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file into an array, checking the header against the payload size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:  # gzip raises both for a truncated or non-gzip .gz
        raise DataError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - offset != expected:
        raise DataError(f"{path}: header says {dims} ({expected} bytes) but payload is {len(data) - offset} bytes")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(dims).astype(dtype.newbyteorder("="))


def find_idx_pair(root: Path, split: str) -> tuple[Path, Path] | None:
    """Locate the images/labels files of `split` under `root`, with or without .gz."""
    found = []
    for stem in IDX_FILES[split]:
        candidates = [root / stem, root / f"{stem}.gz"]
        match = next((c for c in candidates if c.is_file()), None)
        if match is None:
            return None
        found.append(match)
    return found[0], found[1]

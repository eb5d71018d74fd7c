"""A PNG grid of a query image beside its nearest gallery images, captioned with class and similarity."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgecnn.errors import ImageDecodeError
from edgecnn.runtime import fit_image, read_image

TILE = 128


def _tile(path: str, caption: str) -> np.ndarray:
    try:
        image = fit_image(read_image(path), (TILE, TILE), "center_crop")
    except (ImageDecodeError, OSError):
        image = np.full((TILE, TILE, 3), 64, np.uint8)  # a gallery file moved or deleted since indexing
        caption = f"missing: {caption}"
    canvas = np.full((TILE + 22, TILE, 3), 255, np.uint8)
    canvas[:TILE] = image
    cv2.putText(canvas, caption[:20], (2, TILE + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def neighbour_grid(query: str, neighbours: list[tuple[str, str, float]], path: str | Path) -> Path:
    """Write query | neighbour 1 | ... as one PNG row; `neighbours` are (file, label, similarity)."""
    tiles = [_tile(query, "query")]
    tiles += [_tile(file, f"{label} {score:.3f}".strip()) for file, label, score in neighbours]
    gap = np.full((TILE + 22, 6, 3), 255, np.uint8)
    row = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(row, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path

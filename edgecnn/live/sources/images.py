"""An image folder or glob shown as a slideshow at `--fps` (default 1 image per second); unreadable files count."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.live.sources.base import EndOfStream, FrameUnreadable, SourceLost, SourceOptions
from edgecnn.runtime.preprocess import IMAGE_SUFFIXES, read_image

DEFAULT_FPS = 1.0


class ImageSlideshowSource:
    def __init__(self, spec: str, options: SourceOptions):
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not files:
            raise SourceLost(f"{spec}: no image files ({', '.join(IMAGE_SUFFIXES)}) found")
        self.files = files
        self.description = f"slideshow {spec} ({len(files)} images)"
        self.pace_fps: float | None = (options.fps or DEFAULT_FPS) if options.pace == "real" else None
        self._next = 0

    def open(self) -> dict[str, Any]:
        self._next = 0
        return {"images": len(self.files), "fps": self.pace_fps}

    def read(self) -> np.ndarray:
        if self._next >= len(self.files):
            raise EndOfStream(f"{self.description}: shown every image")
        path = self.files[self._next]
        self._next += 1
        try:
            return read_image(path)
        except (ValueError, OSError) as exc:  # runtime's ImageDecodeError is a ValueError
            raise FrameUnreadable(str(exc)) from exc

    def close(self) -> None:
        pass


def open_source(spec: str, options: SourceOptions) -> ImageSlideshowSource:
    return ImageSlideshowSource(spec, options)

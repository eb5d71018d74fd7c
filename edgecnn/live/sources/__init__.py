"""Live sources, one module each, behind one table; a source's module is imported only when it is used."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import DataError
from edgecnn.live.sources.base import EndOfStream, FrameUnreadable, Source, SourceLost, SourceOptions
from edgecnn.runtime.preprocess import IMAGE_SUFFIXES

__all__ = ["SOURCES", "EndOfStream", "FrameUnreadable", "Source", "SourceLost", "SourceOptions", "open_source",
           "source_kind"]


_URL = re.compile(r"^(rtsps?|rtmp|https?)://", re.I)


def _is_images(spec: str) -> bool:
    path = Path(spec)
    return path.is_dir() or any(ch in spec for ch in "*?[") or path.suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class SourceKind:
    name: str
    module: str
    example: str
    reconnects: bool  # a lost source is reopened with backoff (cameras, streams); files end instead
    matches: Callable[[str], bool]


# In matching order: the first kind whose `matches` accepts the --source text opens it.
SOURCES: dict[str, SourceKind] = {kind.name: kind for kind in (
    SourceKind("camera", "edgecnn.live.sources.camera", "0, /dev/video0", True,
               lambda spec: spec.isdigit() or spec.startswith("/dev/video")),
    SourceKind("stream", "edgecnn.live.sources.stream", "rtsp://cam.local/stream, http://host:8080/stream.mjpg",
               True, lambda spec: bool(_URL.match(spec))),
    SourceKind("picamera2", "edgecnn.live.sources.picamera2", "picamera2", True, lambda spec: spec == "picamera2"),
    SourceKind("synthetic", "edgecnn.live.sources.synthetic", "synthetic:fps=30,size=640x480", True,
               lambda spec: spec.split(":", 1)[0] == "synthetic"),
    SourceKind("images", "edgecnn.live.sources.images", "photos/, 'shots/*.jpg'", False, _is_images),
    SourceKind("video", "edgecnn.live.sources.video", "clip.mp4", False, lambda spec: Path(spec).is_file()),
)}


def source_kind(spec: str) -> SourceKind:
    """The first kind in SOURCES that `spec` names; DataError with examples when none does."""
    kind = next((kind for kind in SOURCES.values() if kind.matches(spec)), None)
    if kind is None:
        examples = "; ".join(f"{k.name}: {k.example}" for k in SOURCES.values())
        raise DataError(f"--source {spec!r}: no such file, folder, camera or URL (examples — {examples})")
    return kind


def open_source(spec: str, options: SourceOptions) -> tuple[Source, SourceKind]:
    """The source `spec` names (not yet opened) and its kind; the source's module is imported here."""
    kind = source_kind(spec)
    module = importlib.import_module(kind.module)
    return module.open_source(spec, options), kind

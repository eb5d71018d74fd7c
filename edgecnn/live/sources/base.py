"""What every live source offers the capture thread, and the three ways a read can fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class EndOfStream(Exception):
    """The source has no more frames (end of a file or slideshow): stop cleanly."""


class SourceLost(Exception):
    """The camera or stream went away (or never opened): reconnect with backoff."""


class FrameUnreadable(Exception):
    """One frame could not be decoded: count it and read the next."""


@dataclass(frozen=True)
class SourceOptions:
    """What the user asked of a source; each source uses the fields that apply to it."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None  # camera request, or the slideshow / synthetic rate
    fourcc: str | None = "MJPG"
    pace: str = "real"  # real: a file plays at its own fps, like a camera; fast: as fast as it decodes
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    extra: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """A frame source. `open` may be called again after `close` (reconnect)."""

    description: str
    # Frames per second the capture thread paces reads at (files, slideshows); None: the source paces itself.
    pace_fps: float | None

    def open(self) -> dict[str, Any]:
        """Open (or reopen) the source; return what it granted (size, fps, format). Raise SourceLost if it can't."""

    def read(self) -> np.ndarray:
        """The next frame as uint8 RGB (H, W, 3); raise EndOfStream, SourceLost or FrameUnreadable."""

    def close(self) -> None:
        """Release the device or file; safe to call twice."""


def bgr_to_rgb(frame: np.ndarray | None) -> np.ndarray:
    """OpenCV's BGR (or grey) frame as RGB; FrameUnreadable for an empty or malformed frame."""
    import cv2

    from edgecnn.runtime.preprocess import to_rgb

    if frame is None or frame.size == 0:
        raise FrameUnreadable("empty frame")
    try:
        return to_rgb(frame, bgr=True)
    except (ValueError, cv2.error) as exc:
        raise FrameUnreadable(str(exc)) from exc

"""Video files, paced at their own fps by default so they behave like a camera (`--pace fast` to not pace)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from edgecnn.live.sources.base import SourceLost, SourceOptions
from edgecnn.live.sources.opencv import CaptureSource

DEFAULT_FPS = 30.0  # when a file does not say its rate


class VideoFileSource(CaptureSource):
    def __init__(self, spec: str, options: SourceOptions):
        if not Path(spec).is_file():
            raise SourceLost(f"{spec}: no such video file")
        super().__init__(spec, cv2.CAP_ANY, [], f"video {spec}", end_on_failure=True)
        self.options = options
        self.pace_fps = None

    def open(self) -> dict[str, Any]:
        granted = super().open()
        file_fps = granted["fps"] if granted["fps"] and granted["fps"] > 0 else DEFAULT_FPS
        if self.options.pace == "real":
            self.pace_fps = self.options.fps or file_fps
        assert self._capture is not None
        granted["frames"] = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        granted["paced_fps"] = self.pace_fps
        return granted


def open_source(spec: str, options: SourceOptions) -> VideoFileSource:
    return VideoFileSource(spec, options)

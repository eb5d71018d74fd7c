"""Cameras by index or /dev/videoN through V4L2: request MJPG, size and fps, then read back what was granted."""

from __future__ import annotations

from typing import Any

import cv2

from edgecnn.live.sources.base import SourceOptions
from edgecnn.live.sources.opencv import CaptureSource


class CameraSource(CaptureSource):
    """A V4L2 camera. CAP_PROP_BUFFERSIZE 1 keeps the driver from queueing old frames (where it is honoured)."""

    def __init__(self, spec: str, options: SourceOptions):
        target: str | int = int(spec) if spec.isdigit() else spec
        backend = cv2.CAP_V4L2 if cv2.videoio_registry.hasBackend(cv2.CAP_V4L2) else cv2.CAP_ANY
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(options.open_timeout_s * 1000)]
        super().__init__(target, backend, params, f"camera {spec}")
        self.options = options

    def configure(self, capture: cv2.VideoCapture) -> None:
        # The pixel format goes first: drivers choose the sizes and rates they offer per format.
        if self.options.fourcc:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self.options.fourcc))
        if self.options.width:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.options.width)
        if self.options.height:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.options.height)
        if self.options.fps:
            capture.set(cv2.CAP_PROP_FPS, self.options.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def granted(self, capture: cv2.VideoCapture) -> dict[str, Any]:
        granted = super().granted(capture)
        requested = {"width": self.options.width, "height": self.options.height, "fps": self.options.fps,
                     "fourcc": self.options.fourcc}
        granted["requested"] = requested
        granted["differs"] = [key for key, value in requested.items() if value and granted.get(key) != value]
        return granted


def open_source(spec: str, options: SourceOptions) -> CameraSource:
    return CameraSource(spec, options)

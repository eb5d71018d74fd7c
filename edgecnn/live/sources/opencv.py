"""The shared OpenCV VideoCapture wrapper behind the camera, video-file and stream sources."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from edgecnn.live.sources.base import EndOfStream, SourceLost, bgr_to_rgb


class CaptureSource:
    """A cv2.VideoCapture opened on `target` with `backend` and open-time `params`.

    OpenCV's read() returns False both at the end of a file and on a disconnect; `end_on_failure` says which it
    means for this source (True for files).
    """

    pace_fps: float | None = None

    def __init__(self, target: str | int, backend: int, params: list[int], description: str,
                 end_on_failure: bool = False):
        self.target = target
        self.backend = backend
        self.params = params
        self.description = description
        self.end_on_failure = end_on_failure
        self._capture: cv2.VideoCapture | None = None

    def open(self) -> dict[str, Any]:
        self.close()
        capture = cv2.VideoCapture(self.target, self.backend, self.params)
        if not capture.isOpened():
            capture.release()
            raise SourceLost(f"{self.description}: could not open")
        self._capture = capture
        self.configure(capture)
        return self.granted(capture)

    def configure(self, capture: cv2.VideoCapture) -> None:
        """Settings requested after opening (cameras); nothing by default."""

    def granted(self, capture: cv2.VideoCapture) -> dict[str, Any]:
        """What the backend reports it delivers."""
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC))
        return {
            "backend": capture.getBackendName(),
            "width": int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            "height": int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            "fps": round(float(capture.get(cv2.CAP_PROP_FPS)), 3),
            "fourcc": "".join(chr((fourcc >> 8 * i) & 0xFF) for i in range(4)).strip("\x00") if fourcc > 0 else None,
        }

    def read(self) -> np.ndarray:
        if self._capture is None:
            raise SourceLost(f"{self.description}: not open")
        ok, frame = self._capture.read()
        if not ok:
            if self.end_on_failure:
                raise EndOfStream(f"{self.description}: end of stream")
            raise SourceLost(f"{self.description}: read failed (disconnected?)")
        return bgr_to_rgb(frame)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

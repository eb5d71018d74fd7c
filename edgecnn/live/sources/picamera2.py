"""Raspberry Pi camera modules through picamera2 (libcamera). picamera2 comes from apt, not pip."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecnn.errors import MissingDependencyError
from edgecnn.live.sources.base import FrameUnreadable, SourceLost, SourceOptions

INSTALL = (
    "it comes from Raspberry Pi OS's apt repository, not PyPI: `sudo apt install -y python3-picamera2`, then "
    "make the venv with `python3 -m venv --system-site-packages ...` so it can import the system package "
    "(see devices/raspberry-pi-5.yaml)"
)


def _picamera2_class() -> type:
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise MissingDependencyError(f"--source picamera2 needs the 'picamera2' package: {INSTALL}") from exc
    return Picamera2


class Picamera2Source:
    """Picamera2 with format RGB888, which libcamera lays out as B,G,R in memory: swapped here to RGB."""

    pace_fps: float | None = None

    def __init__(self, spec: str, options: SourceOptions):
        self._class = _picamera2_class()  # fail at once, before the pipeline starts, when it is missing
        self.options = options
        self.description = "picamera2"
        self._camera: Any = None

    def open(self) -> dict[str, Any]:
        self.close()
        size = (self.options.width or 640, self.options.height or 480)
        try:
            camera = self._class()
            controls = {"FrameRate": float(self.options.fps)} if self.options.fps else {}
            config = camera.create_video_configuration(main={"size": size, "format": "RGB888"}, controls=controls)
            camera.configure(config)
            camera.start()
        except Exception as exc:  # libcamera raises RuntimeError/IndexError when no camera is attached
            raise SourceLost(f"picamera2: could not start the camera ({exc})") from exc
        self._camera = camera
        main = camera.camera_configuration()["main"]
        return {"backend": "picamera2", "width": main["size"][0], "height": main["size"][1],
                "format": main["format"], "fps": self.options.fps}

    def read(self) -> np.ndarray:
        if self._camera is None:
            raise SourceLost("picamera2: not open")
        try:
            frame = self._camera.capture_array("main")
        except Exception as exc:
            raise SourceLost(f"picamera2: capture failed ({exc})") from exc
        if frame is None or frame.ndim != 3 or frame.shape[2] < 3:
            raise FrameUnreadable(f"picamera2: unexpected frame {getattr(frame, 'shape', None)}")
        return np.ascontiguousarray(frame[:, :, 2::-1])  # B,G,R(,X) in memory → R,G,B

    def close(self) -> None:
        if self._camera is not None:
            try:
                self._camera.stop()
                self._camera.close()
            finally:
                self._camera = None


def open_source(spec: str, options: SourceOptions) -> Picamera2Source:
    return Picamera2Source(spec, options)

"""RTSP and HTTP(S) streams through OpenCV's FFmpeg backend: TCP transport, open and read timeouts."""

from __future__ import annotations

import os
import threading

import cv2

from edgecnn.live.sources.base import SourceOptions
from edgecnn.live.sources.opencv import CaptureSource

# OpenCV reads FFmpeg demuxer options from this variable when a capture opens ("key;value|key;value").
FFMPEG_OPTIONS_VARIABLE = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_environment_lock = threading.Lock()


class StreamSource(CaptureSource):
    """A network stream; FFmpeg ignores CAP_PROP_BUFFERSIZE, which is why live keeps only the newest frame."""

    def __init__(self, spec: str, options: SourceOptions):
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(options.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(options.read_timeout_s * 1000),
        ]
        super().__init__(spec, cv2.CAP_FFMPEG, params, f"stream {_redact(spec)}")
        self.options = options

    def open(self):  # type: ignore[override]
        ffmpeg_options = "rtsp_transport;tcp" if str(self.target).lower().startswith("rtsp") else ""
        with _environment_lock:  # the variable is process-wide; set it only around this open
            previous = os.environ.get(FFMPEG_OPTIONS_VARIABLE)
            if ffmpeg_options:
                os.environ[FFMPEG_OPTIONS_VARIABLE] = ffmpeg_options
            try:
                granted = super().open()
            finally:
                if previous is None:
                    os.environ.pop(FFMPEG_OPTIONS_VARIABLE, None)
                else:
                    os.environ[FFMPEG_OPTIONS_VARIABLE] = previous
        granted["ffmpeg_options"] = ffmpeg_options or None
        return granted


def _redact(url: str) -> str:
    """The URL without a password, for logs and live.json."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def open_source(spec: str, options: SourceOptions) -> StreamSource:
    return StreamSource(spec, options)

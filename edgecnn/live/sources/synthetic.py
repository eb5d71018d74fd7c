"""A generated source for tests and benchmarks: `synthetic:` plus options, e.g.

`synthetic:colours=255.0.0+0.255.0,size=640x480,fps=30,frames=300,fail_at=100,fail_for=40,hang_at=50,hang_s=3,
bad_at=7`. Frame i has colour i // run (run=15 frames per colour by default). `fail_at`: reads from that frame
index raise SourceLost, as does reopening, for `fail_for` frame intervals (real time), then the stream resumes at
the frame index the clock has reached (the frames of the gap were never delivered); `resize_after_fail` changes the
frame size after the gap. `hang_at` makes one read block for `hang_s` seconds; `bad_at` makes frames unreadable.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgecnn.live.sources.base import EndOfStream, FrameUnreadable, SourceLost, SourceOptions

DEFAULTS: dict[str, str] = {
    "colours": "255.0.0+0.255.0+0.0.255", "size": "320x240", "fps": "30", "frames": "0", "run": "15",
    "fail_at": "-1", "fail_for": "0", "resize_after_fail": "", "hang_at": "-1", "hang_s": "0", "bad_at": "",
    "noise": "20", "seed": "0",
}
VARIANTS = 4  # distinct noise images per colour


def parse_options(spec: str) -> dict[str, str]:
    """`synthetic:key=value,...` as a dict over DEFAULTS; unknown keys are an error naming them."""
    from edgecnn.errors import DataError

    _, _, text = spec.partition(":")
    options = dict(DEFAULTS)
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in DEFAULTS:
            raise DataError(f"synthetic source: unknown option {key!r}; known: {', '.join(DEFAULTS)}")
        options[key] = value
    return options


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(height), int(width)


class SyntheticSource:
    """Frames on a real-time clock at `fps`: frame i is the one whose time has come, like a free-running camera."""

    pace_fps: float | None = None  # it paces itself: a camera delivers on its own clock

    def __init__(self, spec: str, options: SourceOptions):
        values = parse_options(spec)
        self.colours = [tuple(int(c) for c in colour.split(".")) for colour in values["colours"].split("+")]
        self.size = _size(values["size"])
        self.fps = float(values["fps"])
        self.frames = int(values["frames"])  # 0: endless
        self.run = int(values["run"])
        self.fail_at, self.fail_for = int(values["fail_at"]), int(values["fail_for"])
        self.resize_after_fail = _size(values["resize_after_fail"]) if values["resize_after_fail"] else None
        self.hang_at, self.hang_s = int(values["hang_at"]), float(values["hang_s"])
        self.bad_at = {int(i) for i in values["bad_at"].split("+") if i}
        self.noise = int(values["noise"])
        self.rng = np.random.default_rng(int(values["seed"]))
        self.description = f"synthetic {self.size[1]}x{self.size[0]} at {self.fps:g} fps"
        self.started: float | None = None
        self.delivered = -1  # index of the last frame delivered
        self.delivered_indices: list[int] = []  # what was delivered, for tests
        self.hung = False
        self._bank: dict[tuple[int, int, tuple[int, int]], np.ndarray] = {}
        self._open = False

    def _clock_index(self) -> int:
        assert self.started is not None
        return int((time.monotonic() - self.started) * self.fps)

    def _in_gap(self, index: int) -> bool:
        return self.fail_at >= 0 and self.fail_at <= index < self.fail_at + self.fail_for

    def open(self) -> dict[str, Any]:
        if self.started is None:
            self.started = time.monotonic()
        if self._in_gap(self._clock_index()):
            raise SourceLost("synthetic: still disconnected")
        self._open = True
        height, width = self.size
        return {"backend": "synthetic", "width": width, "height": height, "fps": self.fps}

    def read(self) -> np.ndarray:
        if not self._open:
            raise SourceLost("synthetic: not open")
        index = self.delivered + 1
        due = self.started + index / self.fps  # type: ignore[operator]
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        index = max(index, self._clock_index())  # frames whose time passed while nobody read are gone
        if self.frames and index >= self.frames:
            raise EndOfStream("synthetic: last frame")
        if self._in_gap(index):
            self._open = False
            raise SourceLost(f"synthetic: disconnected at frame {index}")
        if index >= self.hang_at >= 0 and not self.hung:
            self.hung = True
            time.sleep(self.hang_s)
            index = max(index, self._clock_index())
        self.delivered = index
        if index in self.bad_at:
            raise FrameUnreadable(f"synthetic: frame {index} is corrupt")
        self.delivered_indices.append(index)
        return self.frame(index)

    def frame(self, index: int) -> np.ndarray:
        """Frame `index`: its class colour with noise; its index written into the first pixels (little-endian).

        The noisy images are made once per (colour, variant, size) and copied: generating 640x480 noise per frame
        would cost the capture thread more than a camera driver does.
        """
        size = self.size
        if self.resize_after_fail and self.fail_at >= 0 and index >= self.fail_at + self.fail_for:
            size = self.resize_after_fail
        colour = (index // self.run) % len(self.colours)
        key = (colour, index % VARIANTS, size)
        if key not in self._bank:
            base = np.asarray(self.colours[colour], np.int16) * 0.8 + 30
            noise = self.rng.integers(-self.noise, self.noise + 1, (*size, 3), dtype=np.int16) if self.noise else 0
            self._bank[key] = np.clip(base + noise, 0, 255).astype(np.uint8)
        frame = self._bank[key].copy()
        frame[0, :4, 0] = np.frombuffer(int(index).to_bytes(4, "little"), np.uint8)
        return frame

    def close(self) -> None:
        self._open = False


def frame_index(frame: np.ndarray) -> int:
    """The frame index SyntheticSource wrote into `frame`."""
    return int.from_bytes(bytes(frame[0, :4, 0]), "little")


def open_source(spec: str, options: SourceOptions) -> SyntheticSource:
    return SyntheticSource(spec, options)

"""The inference loop: take the newest frame, preprocess it as training did, classify, record, show.

Preprocessing is `edgecnn.runtime.preprocess.fit_image` with the bundle's resize mode: the function training
and evaluation use. The result time is taken after postprocessing, before drawing, so the capture→result latency
is what an application acting on the label would see.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edgecnn.live import overlay
from edgecnn.live.capture import Capture
from edgecnn.live.faults import Backoff
from edgecnn.live.mailbox import FifoMailbox, LatestFrameMailbox, Packet
from edgecnn.live.record import JsonlRecorder
from edgecnn.live.results import Decision, Smoother, decide
from edgecnn.live.sources import Source
from edgecnn.live.stats import LiveStats
from edgecnn.live.truth import Truth
from edgecnn.runtime import Predictor
from edgecnn.runtime.preprocess import fit_image

POLL_S = 0.05  # how often the loop wakes without a frame to check limits, the watchdog and signals


class View(Protocol):
    wants_frames: bool

    def start(self) -> str: ...

    def show(self, image_bgr: np.ndarray) -> None: ...

    def close(self) -> None: ...


@dataclass
class LiveConfig:
    """How the loop runs; the command line fills it."""

    every_frame: bool = False  # bounded FIFO, no drops (evaluating a file)
    fifo_capacity: int = 64
    smooth: float = 0.0
    min_confidence: float = 0.0
    top_k: int = 3
    duration_s: float | None = None
    max_frames: int | None = None  # stop after this many inferred frames
    watchdog_s: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    status_interval_s: float = 1.0


class LiveRun:
    """One live run: capture thread, mailbox, inference loop, statistics, optional recorder, truth and view."""

    def __init__(self, predictor: Predictor, factory: Callable[[], Source], reconnects: bool,
                 config: LiveConfig | None = None, recorder: JsonlRecorder | None = None, truth: Truth | None = None,
                 on_status: Callable[[LiveRun], None] | None = None):
        self.predictor = predictor
        self.config = config or LiveConfig()
        self.mailbox = FifoMailbox(self.config.fifo_capacity) if self.config.every_frame else LatestFrameMailbox()
        self.capture = Capture(factory, self.mailbox, reconnects, self.config.backoff, self.config.watchdog_s)
        self.recorder = recorder
        self.truth = truth
        self.view: View | None = None
        self.on_status = on_status
        self.stats = LiveStats()
        self.smoother = Smoother(self.config.smooth)
        self.last: Decision | None = None
        self.stopped_by: str | None = None
        self._stop = threading.Event()
        self._resize = predictor.manifest.preprocessing.resize
        self._finished_at: float | None = None

    def open(self) -> dict[str, Any]:
        """Open the source (after the bundle loaded, before any thread starts)."""
        return self.capture.open()

    def attach(self, view: View) -> str:
        """Start a view; returns where to look at it."""
        self.view = view
        return view.start()

    def stop(self, reason: str) -> None:
        """Ask the loop to finish (thread- and signal-safe); the first reason given is kept."""
        if self.stopped_by is None:
            self.stopped_by = reason
        self._stop.set()

    def run(self) -> dict[str, Any]:
        """Run until the stream ends, a limit is reached or stop() is called; return the summary."""
        config = self.config
        self.stats = stats = LiveStats()
        self.capture.start()
        next_status = stats.started + config.status_interval_s
        idle_since = time.monotonic()
        try:
            while not self._stop.is_set():
                packet = self.mailbox.get(POLL_S)
                now = time.monotonic()
                self.capture.check_watchdog(now)
                if packet is not None:
                    self._process(packet, wait_ms=(now - idle_since) * 1000, taken=now)
                    idle_since = time.monotonic()
                elif self.mailbox.finished:
                    self.stop("end of stream")
                if config.max_frames is not None and stats.inferred >= config.max_frames:
                    self.stop("max frames")
                if config.duration_s is not None and now - stats.started >= config.duration_s:
                    self.stop("duration")
                if getattr(self.view, "quit_requested", False):
                    self.stop("window closed")
                if self.on_status is not None and now >= next_status:
                    next_status = now + config.status_interval_s
                    self.on_status(self)
        finally:
            self._finished_at = time.monotonic()
            self.capture.stop()
            self.mailbox.discard()  # frames left unread at the end were never inferred: dropped
            if self.view is not None:
                self.view.close()
            if self.recorder is not None:
                self.recorder.close()
        return self.summary()

    def _process(self, packet: Packet, wait_ms: float, taken: float) -> None:
        predictor, stats = self.predictor, self.stats
        fitted = fit_image(packet.frame, predictor.image_size, self._resize)  # type: ignore[arg-type]
        preprocessed = time.monotonic()
        probabilities = predictor.predict(fitted[None])[0]
        inferred = time.monotonic()
        decision = decide(self.smoother(probabilities), predictor.labels, self.config.top_k,
                          self.config.min_confidence)
        result = time.monotonic()
        stats.add_frame(packet.captured, taken, result, {
            "wait": wait_ms,
            "preprocess": (preprocessed - taken) * 1000,
            "infer": (inferred - preprocessed) * 1000,
            "postprocess": (result - inferred) * 1000,
        })
        self.last = decision
        stats.last_label = decision.shown
        truth = self.truth.label_of(packet.seq) if self.truth is not None else None
        if truth is not None:
            stats.score(decision.index == truth)
        if self.recorder is not None:
            self.recorder.write({
                "seq": packet.seq,
                "capture_s": round(packet.captured - stats.started, 6),
                "result_s": round(result - stats.started, 6),
                "latency_ms": round((result - packet.captured) * 1000, 3),
                "wall_time": round(packet.wall, 6),
                "top": [[label, round(p, 6)] for _, label, p in decision.top],
                "uncertain": decision.uncertain,
                **({"truth": predictor.labels[truth]} if truth is not None else {}),
            })
        if self.view is not None and self.view.wants_frames:
            started = time.monotonic()
            detail = f"{stats.current_fps():.1f} fps  {(result - packet.captured) * 1000:.1f} ms  #{packet.seq}"
            headline = f"{decision.shown}  {decision.probability:.0%}"
            self.view.show(overlay.draw(packet.frame, headline, detail, decision.uncertain))
            stats.add_overlay((time.monotonic() - started) * 1000)

    def summary(self) -> dict[str, Any]:
        """live.json's figures, the run's state and how it stopped."""
        end = self._finished_at or time.monotonic()
        return {
            "state": self.capture.state,
            "stopped_by": self.stopped_by,
            "mode": "every-frame (FIFO)" if self.config.every_frame else "latest-frame",
            "source": {"description": self.capture.description, "granted": self.capture.granted},
            "label": self.last.shown if self.last else None,
            **self.stats.summary(self.capture, self.mailbox, end - self.stats.started),
        }

    def status_line(self) -> str:
        """One line: processed and capture fps, latency, drops, state and current label."""
        stats, counters = self.stats, self.capture.counters
        elapsed = max(time.monotonic() - stats.started, 1e-9)
        latency = f"{stats.last_latency_ms:.1f} ms" if stats.last_latency_ms is not None else "-"
        return (f"{stats.current_fps():5.1f} fps processed  {counters.captured / elapsed:5.1f} fps captured  "
                f"latency {latency}  dropped {self.mailbox.dropped}  {self.capture.state}  "
                f"{stats.last_label or '-'}")


def run_live(predictor: Predictor, factory: Callable[[], Source], reconnects: bool,
             config: LiveConfig | None = None, **kwargs: Any) -> dict[str, Any]:
    """Open the source, run the loop with SIGINT/SIGTERM stopping it cleanly, and return the summary."""
    live = LiveRun(predictor, factory, reconnects, config, **kwargs)
    live.open()
    with stop_on_signals(live):
        return live.run()


@contextmanager
def stop_on_signals(live: LiveRun) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM stop `live` cleanly (the summary and record file still get written)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = [signal.SIGINT, signal.SIGTERM]
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def handle(number: int, _frame: Any) -> None:
        live.stop(signal.Signals(number).name)

    for sig in signals:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

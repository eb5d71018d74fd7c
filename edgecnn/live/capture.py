"""The capture thread: open the source, pace it, read frames into the mailbox, reconnect when it is lost.

A failed read never produces a frame: nothing is substituted (no black frame) and the frame waiting in the
mailbox when the source is lost is discarded, so the inference loop sees only frames captured while the source
was up. A read that hangs longer than the watchdog limit gets its thread abandoned and a fresh source opened in a
new thread (OpenCV reads cannot be interrupted); the old thread exits when its read returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgecnn.errors import DataError
from edgecnn.live.faults import Backoff, ReadWatch
from edgecnn.live.mailbox import LatestFrameMailbox, Packet
from edgecnn.live.sources import EndOfStream, FrameUnreadable, Source, SourceLost

STATES = ("starting", "running", "reconnecting", "ended", "stopped")


@dataclass
class CaptureCounters:
    """Written by the capture thread only."""

    captured: int = 0  # frames read successfully
    unreadable: int = 0  # reads that returned an undecodable frame
    disconnects: int = 0
    reconnects: int = 0  # successful reopenings after a loss
    watchdog_trips: int = 0
    abandoned_threads: int = 0
    first_capture: float | None = None
    last_capture: float | None = None
    errors: list[str] = field(default_factory=list)  # the last few loss reasons


class Capture:
    """Runs a source in a capture thread and feeds `mailbox`."""

    def __init__(self, factory: Callable[[], Source], mailbox: LatestFrameMailbox, reconnects: bool,
                 backoff: Backoff | None = None, watchdog_s: float = 10.0):
        self.factory = factory
        self.mailbox = mailbox
        self.reconnects = reconnects
        self.backoff = backoff or Backoff()
        self.watchdog_s = watchdog_s
        self.counters = CaptureCounters()
        self.state = "starting"
        self.granted: dict[str, Any] = {}
        self.description = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seq = 0
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._watch = ReadWatch()
        self._source: Source | None = None

    def open(self) -> dict[str, Any]:
        """Open the source in the caller's thread, so a wrong --source fails before anything runs."""
        source = self.factory()
        self.description = source.description
        try:
            self.granted = source.open()
        except SourceLost as exc:
            source.close()
            raise DataError(f"could not open {source.description}: {exc}") from None
        self._source = source
        return self.granted

    def start(self) -> None:
        self._thread = self._spawn(self._source)

    def _spawn(self, source: Source | None) -> threading.Thread:
        with self._lock:
            self._generation += 1
            generation = self._generation
        self._watch = watch = ReadWatch()
        thread = threading.Thread(target=self._loop, args=(generation, source, watch), name=f"capture-{generation}",
                                  daemon=True)
        thread.start()
        return thread

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _loop(self, generation: int, source: Source | None, watch: ReadWatch) -> None:
        counters = self.counters
        next_due: float | None = None
        lost: Source | None = None  # a lost source is reopened, not replaced (a camera stays the same device)
        try:
            while self._current(generation):
                if source is None:
                    source = self._reopen(generation, lost)
                    next_due = None
                    if source is None:
                        return
                pace = source.pace_fps
                if pace:
                    now = time.monotonic()
                    # Behind by more than a frame (a slow decode, a pause): restart the schedule instead of bursting.
                    next_due = now if next_due is None or now - next_due > 1 / pace else next_due
                    if next_due > now:
                        self._stop.wait(next_due - now)
                    next_due += 1 / pace
                watch.begin()
                try:
                    frame = source.read()
                except EndOfStream:
                    if self._current(generation):
                        self.state = "ended"
                        self.mailbox.close()
                    return
                except SourceLost as exc:
                    if not self._current(generation):
                        return
                    self._lost(str(exc))
                    source.close()
                    lost, source = source, None
                    if not self.reconnects:
                        self.state = "ended"
                        self.mailbox.close()
                        return
                    continue
                except FrameUnreadable:
                    counters.unreadable += 1
                    self._next_seq()  # the frame existed: keep frame numbers aligned with the source's
                    continue
                finally:
                    watch.end()
                captured = time.monotonic()
                if not self._current(generation):
                    return  # abandoned by the watchdog while reading: a newer thread owns the mailbox
                self.state = "running"
                counters.captured += 1
                counters.first_capture = counters.first_capture or captured
                counters.last_capture = captured
                self.mailbox.put(Packet(self._next_seq(), captured, time.time(), frame))
        finally:
            if source is not None:
                source.close()

    def _next_seq(self) -> int:
        seq, self._seq = self._seq, self._seq + 1
        return seq

    def _lost(self, reason: str) -> None:
        self.state = "reconnecting"
        self.counters.disconnects += 1
        self.counters.errors = [*self.counters.errors[-4:], reason]
        self.mailbox.discard()

    def _reopen(self, generation: int, lost: Source | None) -> Source | None:
        """`lost` (or, after a hung read, a new source) reopened after the backoff; None when stopped first."""
        while self._current(generation):
            self._stop.wait(self.backoff.next_delay())
            if not self._current(generation):
                return None
            source = lost = lost if lost is not None else self.factory()
            try:
                self.granted = source.open()
            except SourceLost as exc:
                source.close()
                self.counters.errors = [*self.counters.errors[-4:], str(exc)]
                continue
            self.backoff.reset()
            self.counters.reconnects += 1
            return source
        return None

    def check_watchdog(self, now: float | None = None) -> bool:
        """Abandon a hung read and start a fresh source in a new thread; True when it did."""
        if self._stop.is_set() or not self._watch.hung(self.watchdog_s, now):
            return False
        self.counters.watchdog_trips += 1
        self.counters.abandoned_threads += 1
        self._lost(f"read hung for more than {self.watchdog_s:g} s")
        if not self.reconnects:
            self.state = "ended"
            self.mailbox.close()
            with self._lock:
                self._generation += 1
            return True
        self._thread = self._spawn(None)
        return True

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the capture thread (a hung read is left behind: its thread is a daemon)."""
        self._stop.set()
        self.mailbox.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self.state != "ended":
            self.state = "stopped"

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

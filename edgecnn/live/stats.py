"""Counters and timings of a live run: per-stage p50/p95, capture→result latency, staleness, fps.

Samples live in fixed-size ring buffers, so a run of any length uses bounded memory (percentiles then describe
the most recent `SAMPLES` frames). All times are time.monotonic() seconds; reported figures are milliseconds.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np

STAGES = ("wait", "preprocess", "infer", "postprocess", "overlay_encode")
SAMPLES = 1 << 16


class Samples:
    """A ring buffer of float samples."""

    def __init__(self, capacity: int = SAMPLES) -> None:
        self._values = np.zeros(capacity, np.float64)
        self.count = 0

    def add(self, value: float) -> None:
        self._values[self.count % len(self._values)] = value
        self.count += 1

    def values(self) -> np.ndarray:
        return self._values[: min(self.count, len(self._values))]

    def percentiles(self, *qs: float) -> list[float | None]:
        values = self.values()
        if not len(values):
            return [None for _ in qs]
        return [round(float(v), 3) for v in np.percentile(values, qs)]


class LiveStats:
    """What the inference loop measured (the capture thread's counters are merged in by `summary`)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.stages = {name: Samples() for name in STAGES}
        self.latency = Samples()
        self.staleness = Samples()
        self.inferred = 0
        self.scored = 0
        self.correct = 0
        self.first_result: float | None = None
        self.last_result: float | None = None
        self._recent: deque[float] = deque(maxlen=64)  # result times for the status line's current fps
        self.last_label = ""
        self.last_latency_ms: float | None = None

    def add_frame(self, captured: float, taken: float, result: float, stage_ms: dict[str, float]) -> None:
        """One inferred frame: capture, take and result times, and the milliseconds of each stage."""
        for name, value in stage_ms.items():
            self.stages[name].add(value)
        self.latency.add((result - captured) * 1000)
        self.staleness.add((taken - captured) * 1000)
        self.last_latency_ms = (result - captured) * 1000
        self.inferred += 1
        self.first_result = self.first_result or result
        self.last_result = result
        self._recent.append(result)

    def add_overlay(self, ms: float) -> None:
        self.stages["overlay_encode"].add(ms)

    def score(self, correct: bool) -> None:
        self.scored += 1
        self.correct += int(correct)

    def current_fps(self) -> float:
        """Processed fps over the last results (up to 64)."""
        if len(self._recent) < 2 or self._recent[-1] == self._recent[0]:
            return 0.0
        return (len(self._recent) - 1) / (self._recent[-1] - self._recent[0])

    def summary(self, capture: Any, mailbox: Any, elapsed_s: float | None = None) -> dict[str, Any]:
        """The figures live.json records."""
        counters = capture.counters
        elapsed = elapsed_s if elapsed_s is not None else time.monotonic() - self.started
        capture_span = _span(counters.first_capture, counters.last_capture)
        result_span = _span(self.first_result, self.last_result)
        stages = {}
        for name, samples in self.stages.items():
            p50, p95 = samples.percentiles(50, 95)
            values = samples.values()
            mean = round(float(values.mean()), 3) if len(values) else None
            stages[name] = {"p50_ms": p50, "p95_ms": p95, "mean_ms": mean, "samples": samples.count}
        p50, p95, p99 = self.latency.percentiles(50, 95, 99)
        s50, s95 = self.staleness.percentiles(50, 95)
        return {
            "elapsed_s": round(elapsed, 3),
            "frames": {
                "captured": counters.captured,
                "inferred": self.inferred,
                "dropped": mailbox.dropped,
                "unreadable": counters.unreadable,
            },
            "capture_fps": _rate(counters.captured, capture_span),
            "processed_fps": _rate(self.inferred, result_span),
            "stages": stages,
            "latency_ms": {"p50": p50, "p95": p95, "p99": p99, "samples": self.latency.count,
                           "definition": "result time - capture time (time.monotonic)"},
            "staleness_ms": {"p50": s50, "p95": s95,
                             "definition": "age of a frame when inference took it (take time - capture time)"},
            "disconnects": counters.disconnects,
            "reconnects": counters.reconnects,
            "watchdog_trips": counters.watchdog_trips,
            "abandoned_threads": counters.abandoned_threads,
            "source_errors": list(counters.errors),
            "truth": {"scored": self.scored, "correct": self.correct,
                      "top1": self.correct / self.scored if self.scored else None},
        }


def _span(first: float | None, last: float | None) -> float:
    return (last - first) if first is not None and last is not None else 0.0


def _rate(count: int, span_s: float) -> float | None:
    """Events per second between the first and the last event (count - 1 intervals)."""
    return round((count - 1) / span_s, 3) if count > 1 and span_s > 0 else None

"""Fault handling shared by the capture thread: reconnect backoff with jitter, and the hung-read watchdog."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Exponential backoff with jitter: base·2^n capped, each delay scaled by a random factor in [1 - jitter, 1].

    Jitter keeps many devices that lost the same stream from reconnecting in lockstep.
    """

    base_s: float = 0.5
    cap_s: float = 10.0
    jitter: float = 0.5
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (and count the attempt)."""
        delay = min(self.cap_s, self.base_s * 2**self.attempts) * (1 - self.jitter * self.rng.random())
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """The source is back: the next loss starts from the base delay again."""
        self.attempts = 0


class ReadWatch:
    """Tracks the read in progress so another thread can tell when it has hung."""

    def __init__(self) -> None:
        self._started: float | None = None

    def begin(self) -> None:
        self._started = time.monotonic()

    def end(self) -> None:
        self._started = None

    def hung(self, limit_s: float, now: float | None = None) -> bool:
        """True when a read has been in progress for longer than `limit_s`."""
        started = self._started
        return started is not None and ((now or time.monotonic()) - started) > limit_s

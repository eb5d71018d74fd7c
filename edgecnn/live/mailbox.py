"""Hand-over between the capture thread and the inference loop.

`LatestFrameMailbox` holds one packet: a new frame replaces an unread one (counted as dropped), and taking a packet
empties the slot, so no frame is ever inferred twice. `FifoMailbox` (`--every-frame`) is a bounded queue whose
`put` waits for room instead of dropping, for evaluating a file frame by frame.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Packet:
    """One captured frame: its sequence number, monotonic capture time, wall-clock time and RGB pixels."""

    seq: int
    captured: float  # time.monotonic() right after the read returned
    wall: float  # time.time() at the same moment, for records
    frame: np.ndarray


class LatestFrameMailbox:
    """One slot with the newest packet; `put` never blocks."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._packet: Packet | None = None
        self._closed = False
        self.put_count = 0
        self.taken = 0
        self.dropped = 0  # put but never taken: replaced by a newer frame, discarded, or left at the end

    def put(self, packet: Packet) -> bool:
        """Offer a packet; False once the mailbox is closed."""
        with self._condition:
            if self._closed:
                return False
            if self._packet is not None:
                self.dropped += 1
            self._packet = packet
            self.put_count += 1
            self._condition.notify()
            return True

    def get(self, timeout: float) -> Packet | None:
        """The newest packet not taken before, waiting up to `timeout` seconds; None if there is none."""
        with self._condition:
            self._condition.wait_for(lambda: self._packet is not None or self._closed, timeout)
            packet, self._packet = self._packet, None
            if packet is not None:
                self.taken += 1
            return packet

    def discard(self) -> int:
        """Drop what is waiting (the source was lost: that frame is stale now); returns how many were dropped."""
        with self._condition:
            count = int(self._packet is not None)
            self._packet = None
            self.dropped += count
            return count

    def close(self) -> None:
        """No more packets will come; waiting readers wake up."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def finished(self) -> bool:
        """Closed and empty: the reader has seen everything."""
        with self._condition:
            return self._closed and self._packet is None


class FifoMailbox(LatestFrameMailbox):
    """A bounded FIFO: every frame is taken in order; `put` waits while it is full."""

    def __init__(self, capacity: int = 64) -> None:
        super().__init__()
        self.capacity = capacity
        self._queue: deque[Packet] = deque()

    def put(self, packet: Packet) -> bool:
        with self._condition:
            self._condition.wait_for(lambda: len(self._queue) < self.capacity or self._closed)
            if self._closed:
                return False
            self._queue.append(packet)
            self.put_count += 1
            self._condition.notify_all()
            return True

    def get(self, timeout: float) -> Packet | None:
        with self._condition:
            self._condition.wait_for(lambda: bool(self._queue) or self._closed, timeout)
            if not self._queue:
                return None
            packet = self._queue.popleft()
            self.taken += 1
            self._condition.notify_all()  # a put may be waiting for room
            return packet

    def discard(self) -> int:
        with self._condition:
            count = len(self._queue)
            self._queue.clear()
            self.dropped += count
            self._condition.notify_all()
            return count

    @property
    def finished(self) -> bool:
        with self._condition:
            return self._closed and not self._queue

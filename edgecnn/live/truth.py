"""`--truth labels.csv`: rows `first_frame,last_frame,label` (frame numbers from 0, inclusive; label a class name
or index). Frames no row covers are not scored."""

from __future__ import annotations

import bisect
import csv
from pathlib import Path

from edgecnn.errors import DataError


class Truth:
    """Non-overlapping frame ranges, each with a class index."""

    def __init__(self, ranges: list[tuple[int, int, int]]) -> None:
        self.ranges = sorted(ranges)
        self._starts = [first for first, _, _ in self.ranges]
        for (_, last, _), (first, _, _) in zip(self.ranges, self.ranges[1:]):
            if first <= last:
                raise DataError(f"truth ranges overlap: one ends at frame {last}, the next starts at {first}")

    def label_of(self, frame: int) -> int | None:
        """The true class index of `frame`, or None when no row covers it."""
        position = bisect.bisect_right(self._starts, frame) - 1
        if position < 0:
            return None
        first, last, label = self.ranges[position]
        return label if first <= frame <= last else None


def load_truth(path: str | Path, labels: list[str]) -> Truth:
    """Read a truth CSV against the bundle's labels; DataError naming the row for anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--truth {path}: no such file")
    ranges = []
    with path.open(newline="", encoding="utf-8") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            cells = [cell.strip() for cell in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if number == 1 and not cells[0].lstrip("-").isdigit():
                continue  # a header row
            if len(cells) != 3:
                raise DataError(f"{path}:{number}: expected first_frame,last_frame,label, got {row}")
            try:
                first, last = int(cells[0]), int(cells[1])
            except ValueError:
                raise DataError(f"{path}:{number}: frame numbers must be integers, got {row}") from None
            if not 0 <= first <= last:
                raise DataError(f"{path}:{number}: need 0 <= first_frame <= last_frame, got {first}, {last}")
            ranges.append((first, last, _label_index(cells[2], labels, f"{path}:{number}")))
    if not ranges:
        raise DataError(f"{path}: no truth rows (first_frame,last_frame,label)")
    return Truth(ranges)


def _label_index(text: str, labels: list[str], where: str) -> int:
    if text in labels:
        return labels.index(text)
    if text.isdigit() and int(text) < len(labels):
        return int(text)
    raise DataError(f"{where}: label {text!r} is neither one of the bundle's labels {labels} nor an index below "
                    f"{len(labels)}")

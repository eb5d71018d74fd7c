"""history.csv (Keras CSVLogger) housekeeping."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from edgecnn import atomic


def dedupe_history(path: Path, phase_of: Callable[[int], str] | None = None) -> None:
    """Keep the last row per epoch (a resumed run may log an epoch twice); add the phase column when given."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    by_epoch = {row["epoch"]: row for row in rows}
    fields = list(rows[0].keys())
    if phase_of is not None:
        fields = ["epoch", "phase", *(k for k in fields if k not in ("epoch", "phase"))]
        for row in by_epoch.values():
            row["phase"] = phase_of(int(row["epoch"]))
    lines = [",".join(fields)] + [",".join(row.get(k) or "" for k in fields) for row in by_epoch.values()]
    atomic.write_text(path, "\n".join(lines) + "\n")

"""history.csv (Keras CSVLogger) housekeeping."""

from __future__ import annotations

import csv
from pathlib import Path

from edgecnn import atomic


def dedupe_history(path: Path) -> None:
    """Keep the last row per epoch: a resumed run may have logged an epoch twice."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    by_epoch = {row["epoch"]: row for row in rows}
    fields = list(rows[0].keys())
    lines = [",".join(fields)] + [",".join(row[k] for k in fields) for row in by_epoch.values()]
    atomic.write_text(path, "\n".join(lines) + "\n")

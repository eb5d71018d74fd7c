"""`--record results.jsonl`: one JSON line per inferred frame, each line complete whenever the run stops."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class JsonlRecorder:
    """Writes each record as one line with a single write and a flush, so a stop never leaves half a line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

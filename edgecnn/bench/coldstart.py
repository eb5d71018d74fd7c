"""Cold start: a fresh interpreter imports the runtime, loads a bundle and returns its first result.

`python -m edgecnn.bench.coldstart BUNDLE [THREADS] [--no-verify]` prints one JSON line; `cold_start` runs it and
times it from process start to that line, which is what a device user waits for after power-on or a restart.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from edgecnn.errors import BundleError


def cold_start(path: str | Path, threads: int | None = None, verify: bool = True) -> dict[str, float]:
    """Milliseconds from spawning a Python process to its first prediction, with the import and load it took."""
    import subprocess  # here, not at the top: the timed child runs this module and must pay only what a user pays

    command = [sys.executable, "-m", "edgecnn.bench.coldstart", str(path), str(threads or 0)]
    if not verify:
        command.append("--no-verify")
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        line = process.stdout.readline() if process.stdout else ""
        total_ms = (time.perf_counter() - started) * 1000
        _, stderr = process.communicate()
    if process.returncode != 0 or not line:
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {process.returncode}"
        raise BundleError(f"{path}: cold start failed ({reason})")
    inner = json.loads(line)
    return {"cold_start_ms": total_ms, **inner}


def _first_result(path: str, threads: int, verify: bool) -> dict[str, Any]:
    started = time.perf_counter()
    import numpy as np

    from edgecnn.runtime import load

    imported = time.perf_counter()
    predictor = load(path, threads=threads or None, verify=verify)
    loaded = time.perf_counter()
    predictor.predict(np.zeros((1, *predictor.image_size, 3), np.uint8))
    done = time.perf_counter()
    return {
        "import_ms": (imported - started) * 1000,
        "load_verify_ms": (loaded - imported) * 1000,  # hashing the files, reading bundle.json and the model
        "first_inference_ms": (done - loaded) * 1000,
    }


if __name__ == "__main__":
    print(json.dumps(_first_result(sys.argv[1], int(sys.argv[2]), "--no-verify" not in sys.argv[3:])), flush=True)

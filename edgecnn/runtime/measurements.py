"""bench.json: latency a device measured for a bundle (`edgecnn bench --save`), read back by `edgecnn deploy`.

Written into the bundle directory next to bundle.json, so a bundle copied back from a device carries its own
measurement, tied to its model file by SHA-256. TensorFlow-free, like the rest of the runtime.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgecnn.atomic import write_json
from edgecnn.errors import BundleError
from edgecnn.runtime.bundle import Manifest

BENCH_NAME = "bench.json"
BENCH_SCHEMA = 1


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; platform.processor() elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware"):
                return value.strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """What the measurement ran on: host, architecture, CPU, cores, OS and Python."""
    return {
        "hostname": socket.gethostname(),
        "arch": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
    }


def bench_record(manifest: Manifest, row: dict[str, Any], runtime: dict[str, Any], extra: dict[str, Any]) -> dict:
    """The bench.json contents for one bundle: machine, runtime versions, threads, latency statistics."""
    return {
        "schema_version": BENCH_SCHEMA,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "bundle": {"name": manifest.name, "format": manifest.format, "precision": manifest.precision,
                   "sha256": dict(manifest.sha256)},
        "runtime": runtime,
        "threads": row.get("threads"),
        "stats": {key: row[key] for key in ("runs", "warmup", "min_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
                                            "std_ms", "load_ms", "peak_rss_mb") if key in row},
        **extra,
    }


def write_bench(bundle_dir: str | Path, record: dict) -> Path:
    """Write bundle_dir/bench.json atomically."""
    return write_json(Path(bundle_dir) / BENCH_NAME, record)


def read_bench(path: str | Path) -> dict:
    """A bench.json file, or BundleError saying why it cannot be used."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not a readable {BENCH_NAME} ({exc})") from exc
    if not isinstance(record, dict) or "stats" not in record or "bundle" not in record:
        raise BundleError(f"{path}: not a {BENCH_NAME} written by `edgecnn bench --save`")
    return record


def find_bench_files(directory: str | Path) -> list[Path]:
    """Every bench.json under `directory` (bundles copied back from a device, or bare files)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"{directory}: no such measurements directory")
    return sorted(directory.rglob(BENCH_NAME))

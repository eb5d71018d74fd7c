"""Latency from a device: bench.json files (`edgecnn bench --save` on the device) matched to candidates."""

from __future__ import annotations

from pathlib import Path

from edgecnn.deploy.candidates import Candidate
from edgecnn.runtime.bundle import read_manifest
from edgecnn.runtime.measurements import find_bench_files, read_bench


def apply_measurements(candidates: list[Candidate], directory: str | Path, threads: int) -> list[Path]:
    """Replace proxy latency with a device's bench.json where its model file hashes match; the files used."""
    records = [(path, read_bench(path)) for path in find_bench_files(directory)]
    used = []
    for candidate in candidates:
        if candidate.bundle is None:
            continue
        hashes = read_manifest(candidate.bundle).sha256
        for path, record in records:
            bundle = record["bundle"]
            if (bundle["format"], bundle["precision"]) != (candidate.format, candidate.precision):
                continue
            if hashes and bundle.get("sha256") and bundle["sha256"] != hashes:
                continue  # another export of the same target: not this model's latency
            machine = record["machine"]
            candidate.p50_ms, candidate.p90_ms = record["stats"]["p50_ms"], record["stats"]["p90_ms"]
            candidate.threads, candidate.proxy = record.get("threads"), False
            candidate.measured = (f"device: {machine.get('hostname', '?')} ({machine.get('arch', '?')}, "
                                  f"{candidate.threads or 'auto'} threads, {record.get('measured_at', '?')})")
            if candidate.threads != threads:
                candidate.notes.append(f"measured at {candidate.threads} threads, the profile says {threads}")
            used.append(path)
            break
    return used

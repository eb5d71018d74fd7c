"""Single-image latency after warm-up, model load time and peak memory of a loaded Predictor. No TensorFlow."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.runtime.predictor import Predictor, load

MIB = 1024 * 1024  # "MB" in every table is 2**20 bytes, for model sizes and memory alike


@dataclass(frozen=True)
class LatencyStats:
    """Wall-clock milliseconds of timed single-image predict() calls, plus load time and memory."""

    runs: int
    warmup: int
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    load_ms: float
    peak_rss_mb: float | None
    threads: int | None
    info: dict[str, Any]
    samples_ms: tuple[float, ...] = field(default=(), repr=False)

    def to_dict(self, samples: bool = False) -> dict[str, Any]:
        """JSON-able summary; the per-run samples only when asked for."""
        data = asdict(self)
        if not samples:
            del data["samples_ms"]
        return data


def measure_latency(
    predictor: Predictor, runs: int = 100, warmup: int = 10, image: np.ndarray | None = None
) -> LatencyStats:
    """Time `runs` single-image predict() calls after `warmup` untimed ones."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    if image is None:
        # Fixed noise, not a constant image: realistic activations, and the same input on every run.
        image = np.random.default_rng(0).integers(0, 256, (*predictor.image_size, 3), dtype=np.uint8)
    batch = np.asarray(image)[None]
    for _ in range(warmup):
        predictor.predict(batch)
    samples = np.empty(runs, np.float64)
    for i in range(runs):
        started = time.perf_counter_ns()
        predictor.predict(batch)
        samples[i] = (time.perf_counter_ns() - started) / 1e6
    p50, p90, p99 = np.percentile(samples, [50, 90, 99])
    info = predictor.info()
    return LatencyStats(
        runs=runs,
        warmup=warmup,
        min_ms=float(samples.min()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        mean_ms=float(samples.mean()),
        std_ms=float(samples.std()),
        load_ms=float(predictor.load_ms),
        peak_rss_mb=peak_rss_mb(),
        threads=info.get("threads"),
        info=info,
        samples_ms=tuple(float(s) for s in samples),
    )


def paired_ratio(
    candidate: Predictor, reference: Predictor, rounds: int = 40, per_round: int = 10, warmup: int = 20
) -> float:
    """Median over rounds of candidate p50 / reference p50, the two timed in alternating rounds in one process.

    Sub-millisecond latencies of separately measured bundles drift by tens of percent with CPU frequency, cache
    state and thread placement; alternating them exposes both to the same conditions, so the ratio is what holds.
    """
    if candidate.image_size != reference.image_size:
        raise ValueError(f"different input sizes: {candidate.image_size} vs {reference.image_size}")
    batch = np.random.default_rng(0).integers(0, 256, (1, *candidate.image_size, 3), dtype=np.uint8)
    for predictor in (candidate, reference):
        for _ in range(warmup):
            predictor.predict(batch)
    ratios = []
    for _ in range(rounds):
        medians = []
        for predictor in (candidate, reference):
            samples = []
            for _ in range(per_round):
                started = time.perf_counter_ns()
                predictor.predict(batch)
                samples.append(time.perf_counter_ns() - started)
            medians.append(float(np.median(samples)))
        ratios.append(medians[0] / medians[1])
    return float(np.median(ratios))


def peak_rss_mb() -> float | None:
    """Peak resident memory of this whole process so far, in MiB; None where the OS does not report it.

    This is a process-wide high-water mark: it includes everything the process loaded before (data sets, other
    models), so measure one model per process to attribute memory to it. On Linux it is VmHWM, the peak of the
    current address space; `resource.getrusage().ru_maxrss` (KiB on Linux, bytes on macOS) is the fallback,
    because on Linux ru_maxrss also carries over the parent's peak into a freshly spawned child.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MIB  # reported in kB (KiB)
    try:
        import resource
    except ImportError:  # Windows
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / MIB if sys.platform == "darwin" else maxrss * 1024 / MIB


def measure_bundle(
    path: str | Path, threads: int | None = None, runs: int = 100, warmup: int = 10, verify: bool = True
) -> LatencyStats:
    """Load a bundle and measure it: the unit of work `edgecnn bench` runs in a fresh process per bundle."""
    return measure_latency(load(path, threads=threads, verify=verify), runs=runs, warmup=warmup)

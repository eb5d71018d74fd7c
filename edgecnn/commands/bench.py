"""`edgecnn bench BUNDLE [BUNDLE ...]`: latency percentiles, load time and peak memory, one table row per bundle."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn.commands.arguments import non_negative_int, positive_int

if TYPE_CHECKING:
    from edgecnn.bench.latency import LatencyStats

COLUMNS = [
    ("bundle", "bundle", "{}"),
    ("format", "format", "{}"),
    ("precision", "precision", "{}"),
    ("size_mb", "size MB", "{:.2f}"),
    ("threads", "threads", "{}"),
    ("load_ms", "load ms", "{:.1f}"),
    ("min_ms", "min ms", "{:.3f}"),
    ("p50_ms", "p50 ms", "{:.3f}"),
    ("p90_ms", "p90 ms", "{:.3f}"),
    ("p99_ms", "p99 ms", "{:.3f}"),
    ("mean_ms", "mean ms", "{:.3f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.1f}"),
]




def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle directories (or model files)")
    parser.add_argument("--runs", type=positive_int, default=100, help="timed single-image runs (default 100)")
    parser.add_argument("--warmup", type=non_negative_int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--threads", type=positive_int, help="interpreter threads (default: the runtime's choice)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from edgecnn.report import format_table

    rows = [
        bench_row(Path(path), measure_isolated(path, args.threads, args.runs, args.warmup)) for path in args.bundles
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_table([{**row, "threads": row["threads"] or "auto"} for row in rows], COLUMNS))
    print(
        f"\n{args.runs} timed single-image predict() calls after {args.warmup} warm-up calls. Each bundle runs in a "
        "fresh process:\nload ms is a cold load, peak RSS is that process's high-water mark (runtime + one model). "
        "MB = 2**20 bytes."
    )
    return 0


def measure_isolated(path: str | Path, threads: int | None, runs: int, warmup: int) -> LatencyStats:
    """measure_bundle in a freshly spawned process: a cold load, and peak memory owned by this bundle alone."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from edgecnn.bench.latency import measure_bundle

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_bundle, str(path), threads, runs, warmup).result()


def bench_row(path: Path, stats: LatencyStats) -> dict[str, Any]:
    """One table/JSON row: what the bundle is, and how it ran."""
    from edgecnn.bench.latency import MIB

    return {
        "bundle": str(path),
        "format": stats.info["format"],
        "precision": stats.info["precision"],
        "size_mb": stats.info["size_bytes"] / MIB,  # bundle.json's size: the model file with its sidecars
        "threads": stats.threads,
        "load_ms": stats.load_ms,
        "min_ms": stats.min_ms,
        "p50_ms": stats.p50_ms,
        "p90_ms": stats.p90_ms,
        "p99_ms": stats.p99_ms,
        "mean_ms": stats.mean_ms,
        "std_ms": stats.std_ms,
        "peak_rss_mb": stats.peak_rss_mb,
        "runs": stats.runs,
        "warmup": stats.warmup,
        "backend": stats.info.get("package", stats.info.get("backend")),
        "path": stats.info["model"],
    }

"""`edgecnn bench BUNDLE [BUNDLE ...]`: latency percentiles, load time and peak memory, one table row per bundle."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn.commands.arguments import add_no_verify, non_negative_int, positive_int

if TYPE_CHECKING:
    from edgecnn.bench.latency import LatencyStats

COLUMNS = [
    ("bundle", "bundle", "{}"),
    ("format", "format", "{}"),
    ("precision", "precision", "{}"),
    ("size_mb", "size MB", "{:.2f}"),
    ("threads", "threads", "{}"),
    ("load_ms", "load ms", "{:.1f}"),
    ("cold_start_ms", "cold ms", "{:.0f}"),
    ("min_ms", "min ms", "{:.3f}"),
    ("p50_ms", "p50 ms", "{:.3f}"),
    ("p90_ms", "p90 ms", "{:.3f}"),
    ("p99_ms", "p99 ms", "{:.3f}"),
    ("mean_ms", "mean ms", "{:.3f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.1f}"),
]
PER_OP_RUNS = 20
PER_OP_TOP = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle directories (or model files)")
    parser.add_argument("--runs", type=positive_int, default=100, help="timed single-image runs (default 100)")
    parser.add_argument("--warmup", type=non_negative_int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--threads", type=positive_int, help="interpreter threads (default: the runtime's choice)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument(
        "--save", action="store_true",
        help="write bench.json into each bundle (machine, runtime versions, threads, statistics): what "
        "`edgecnn deploy --measurements` reads back from a device",
    )
    parser.add_argument(
        "--per-op", action="store_true",
        help=f"also print the {PER_OP_TOP} slowest ops from the runtime's own profiler (ONNX Runtime session "
        "profiling, OpenVINO performance counters; LiteRT's Python wheel has none: its execution plan)",
    )
    add_no_verify(parser)


def run(args: argparse.Namespace) -> int:
    from edgecnn.bench.coldstart import cold_start
    from edgecnn.report import format_table

    verify = getattr(args, "verify", True)
    rows, profiles = [], []
    for path in args.bundles:
        stats = measure_isolated(path, args.threads, args.runs, args.warmup, verify)
        row = {**bench_row(Path(path), stats), **cold_start(path, args.threads, verify)}
        rows.append(row)
        profiles.append(isolated(_profile_worker, path, args.threads, PER_OP_RUNS, verify) if args.per_op else None)
        if args.save:
            row["saved"] = str(save_measurement(Path(path), row, stats))
    if args.json:
        print(json.dumps([{**row, **({"per_op": p} if p else {})} for row, p in zip(rows, profiles)], indent=2))
        return 0
    print(format_table([{**row, "threads": row["threads"] or "auto"} for row in rows], COLUMNS))
    print(
        f"\n{args.runs} timed single-image predict() calls after {args.warmup} warm-up calls. Each bundle runs in a "
        "fresh process:\nload ms is a cold load, peak RSS is that process's high-water mark (runtime + one model). "
        "MB = 2**20 bytes.\ncold ms: a new Python process from start to its first result (import, load, verify, "
        "first inference)."
    )
    _print_extras(rows, profiles)
    return 0


def _print_extras(rows: list[dict[str, Any]], profiles: list[dict | None]) -> None:
    from edgecnn.bench.op_profile import format_profile

    for row, profile in zip(rows, profiles):
        if profile is not None:
            print(f"\n{row['bundle']}: slowest ops over {PER_OP_RUNS} runs\n{format_profile(profile, PER_OP_TOP)}")
    for row in rows:
        if "saved" in row:
            print(f"saved {row['saved']}")


def _profile_worker(path: str, threads: int | None, runs: int, verify: bool) -> dict:
    from edgecnn.bench.op_profile import profile_bundle

    return profile_bundle(path, threads, runs, verify)


def save_measurement(path: Path, row: dict[str, Any], stats: LatencyStats) -> Path:
    """Write bench.json into the bundle `path` is (or whose model file it is)."""
    from edgecnn.errors import BundleError
    from edgecnn.runtime.bundle import MANIFEST_NAME, read_manifest
    from edgecnn.runtime.measurements import bench_record, write_bench

    bundle_dir = path if path.is_dir() else path.parent
    if not (bundle_dir / MANIFEST_NAME).is_file():
        raise BundleError(f"{path}: --save needs a bundle directory (with {MANIFEST_NAME}), not a bare model file")
    runtime = {key: stats.info[key] for key in ("backend", "package") if key in stats.info}
    cold = {key: row[key] for key in ("cold_start_ms", "import_ms", "load_verify_ms", "first_inference_ms")}
    return write_bench(bundle_dir, bench_record(read_manifest(bundle_dir), row, runtime, {"cold_start": cold}))


def measure_isolated(
    path: str | Path, threads: int | None, runs: int, warmup: int, verify: bool = True
) -> LatencyStats:
    """measure_bundle in a freshly spawned process: a cold load, and peak memory owned by this bundle alone."""
    from edgecnn.bench.latency import measure_bundle

    return isolated(measure_bundle, str(path), threads, runs, warmup, verify)


def isolated(function: Any, *arguments: Any) -> Any:
    """function(*arguments) in a freshly spawned process (its exceptions re-raised here)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *arguments).result()


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

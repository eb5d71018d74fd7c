"""`edgecnn deploy RUN --device PROFILE`: export what the device can run, measure it, choose, write deploy/<run>-<dev>/.

The orchestration lives here because it exports (TensorFlow) and measures (bench); judging, ranking and writing the
deploy directory are the device-side package edgecnn.deploy.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

from edgecnn.commands.arguments import non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory written by `edgecnn train` (e.g. runs/fashion)")
    parser.add_argument("--device", required=True, metavar="NAME|PATH",
                        help="device profile (see `edgecnn devices`): its runtimes × precisions are the candidates")
    parser.add_argument(
        "--max-drop", type=float, default=None, metavar="POINTS",
        help="accuracy budget: validation top-1 points below Keras a candidate may lose (default: the recipe's "
        "export.max_drop, else 1)",
    )
    parser.add_argument(
        "--measurements", metavar="DIR",
        help="bench.json files from `edgecnn bench --save` on the device (anywhere under DIR): rank by the "
        "device's latency instead of this machine's",
    )
    parser.add_argument("--bundles", default="bundles", metavar="DIR",
                        help="where exported bundles are reused from and new ones written (default: bundles)")
    parser.add_argument("--out", default="deploy", metavar="DIR", help="parent of the deploy dir (default deploy)")
    parser.add_argument("--runs", type=positive_int, default=100, help="timed runs per candidate here (default 100)")
    parser.add_argument("--warmup", type=non_negative_int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--calibration", type=positive_int, default=None, help="int8 calibration images for exports")


def run(args: argparse.Namespace) -> int:
    from edgecnn.deploy import choose
    from edgecnn.deploy.measurements import apply_measurements
    from edgecnn.deploy.output import latency_note, table, write_deploy
    from edgecnn.devices import load_profile
    from edgecnn.errors import AccuracyBudgetError
    from edgecnn.export.checks import DEFAULT_MAX_DROP
    from edgecnn.run_dir import open_run

    profile = load_profile(args.device)
    run_dir = open_run(args.run)
    recipe = run_dir.read_recipe()
    max_drop = args.max_drop if args.max_drop is not None else recipe.export.max_drop
    max_drop = DEFAULT_MAX_DROP if max_drop is None else max_drop
    candidates = [
        obtain(run_dir.root, recipe.name, format_name, precision, Path(args.bundles), max_drop, args.calibration)
        for format_name, precision in profile.deploy_targets()
    ]
    if args.measurements:
        used = apply_measurements(candidates, args.measurements, profile.threads)
        print(f"device measurements: {len(used)} bench.json file(s) matched from {args.measurements}")
        for candidate in candidates:
            if candidate.bundle and candidate.p50_ms is None:
                candidate.reason = f"no device measurement in {args.measurements}"
    else:
        for candidate in candidates:
            measure_here(candidate, profile.arch, profile.threads, args.runs, args.warmup)
    chosen = choose(candidates, max_drop)
    print(f"\n{recipe.name} on {profile.name} (budget {max_drop} pt validation top-1, {profile.threads} threads)")
    print(table(candidates))
    print(latency_note(candidates, profile))
    if chosen is None:
        raise AccuracyBudgetError(
            f"no candidate for {profile.name} is within {max_drop} points and measured; nothing written (table above)"
        )
    out_dir = write_deploy(
        Path(args.out) / f"{recipe.name}-{profile.name}", chosen, candidates, profile,
        {"run": str(run_dir.root), "run_name": recipe.name, "max_drop_points": max_drop,
         "measurements": str(args.measurements) if args.measurements else None},
    )
    print(f"chosen: {chosen.label} ({chosen.reason}) → {out_dir}/ (deploy.json, run.sh, latency_vs_accuracy.png)")
    return 0


def obtain(run_root: Path, run_name: str, format_name: str, precision: str, bundles: Path, max_drop: float,
           calibration: int | None):
    """The candidate of one target: the run's bundle already exported under `bundles`, else a new export."""
    from edgecnn.deploy import candidate_from_bundle, missing_candidate
    from edgecnn.errors import EdgecnnError
    from edgecnn.export.pipeline import export_run
    from edgecnn.runtime.bundle import MANIFEST_NAME, read_manifest

    bundle_dir = bundles / f"{run_name}-{format_name}-{precision}"
    if (bundle_dir / MANIFEST_NAME).is_file():
        try:
            source = read_manifest(bundle_dir).source.get("run")
        except EdgecnnError:
            source = None
        if source and Path(source).resolve() == run_root.resolve():
            print(f"reusing {bundle_dir}")
            return candidate_from_bundle(bundle_dir)
    try:
        result = export_run(run_root, format_name, precision, bundles, calibration, max_drop)
    except EdgecnnError as exc:
        return missing_candidate(format_name, precision, f"export failed: {str(exc).splitlines()[0]}")
    return candidate_from_bundle(result.bundle_dir)


def measure_here(candidate, device_arch: str, threads: int, runs: int, warmup: int) -> None:
    """p50/p90 of the candidate on this machine at the profile's threads; a proxy when the architecture differs."""
    from edgecnn.commands.bench import measure_isolated
    from edgecnn.errors import EdgecnnError
    from edgecnn.runtime.measurements import cpu_model

    if candidate.bundle is None:
        return
    try:
        stats = measure_isolated(candidate.bundle, threads, runs, warmup)
    except EdgecnnError as exc:
        candidate.reason = f"not measurable here: {str(exc).splitlines()[0]}"
        return
    candidate.p50_ms, candidate.p90_ms, candidate.threads = stats.p50_ms, stats.p90_ms, threads
    candidate.proxy = platform.machine() != device_arch
    candidate.measured = (f"{'PROXY: ' if candidate.proxy else ''}this machine ({platform.machine()}, {cpu_model()}, "
                          f"{threads} threads)")

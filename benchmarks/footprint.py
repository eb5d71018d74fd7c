"""Footprint of the device install: base install size, cold import + load time, peak RSS of `edgecnn live`.

Makes a fresh venv with only `pip install .` (the base install: the runtime, no TensorFlow) and measures there:
site-packages size (per top-level entry), process start → first result (`python -m edgecnn.bench.coldstart`) with
its import and load parts, and the peak RSS of `edgecnn live` on a synthetic 640x480 stream.
Usage: python benchmarks/footprint.py BUNDLE [--venv /tmp/edgecnn-base-venv] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MB = 1e6  # decimal MB, as pip and the issue count install sizes
MAX_RSS = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); " \
          "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def make_venv(venv: Path) -> float:
    """A fresh venv with the base install; seconds pip took."""
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    started = time.perf_counter()
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-cache-dir", str(REPO)], check=True)
    return time.perf_counter() - started


def tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def sizes(venv: Path) -> tuple[int, int, list[tuple[str, int]]]:
    """(total, total without pip/setuptools, the largest top-level entries) in bytes."""
    site = site_packages(venv)
    entries = [(p.name, tree_bytes(p)) for p in site.iterdir()]
    total = sum(size for _, size in entries)
    tooling = sum(size for name, size in entries if name.split("-")[0].split(".")[0] in ("pip", "setuptools",
                                                                                         "_distutils_hack"))
    return total, total - tooling, sorted(entries, key=lambda e: -e[1])[:8]


def cold_starts(venv: Path, bundle: Path, repeats: int) -> tuple[dict[str, float], list[float]]:
    """Medians over `repeats` fresh processes: start → first result, its import / load / first-inference parts and
    the process's CPU time; and the 1-minute load average seen before each run.

    Wall time on a shared machine grows with the other processes' load; the child's CPU time (user + sys, whole
    process) barely does, so the two together tell a slow runtime from a busy machine.
    """
    runs, loads = [], []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0])
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        process = subprocess.Popen([str(venv / "bin" / "python"), "-m", "edgecnn.bench.coldstart", str(bundle), "0"],
                                   stdout=subprocess.PIPE, text=True)
        line = process.stdout.readline()
        total = (time.perf_counter() - started) * 1000
        process.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
        runs.append({"cold_start_ms": total, "cpu_ms": cpu, **json.loads(line)})
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}, loads


def live_peak_rss(venv: Path, bundle: Path, frames: int) -> float:
    """Peak RSS (MiB) of an `edgecnn live` process on a synthetic 640x480 30 fps stream."""
    with tempfile.TemporaryDirectory() as out:
        command = [str(venv / "bin" / "edgecnn"), "live", str(bundle), "--source",
                   f"synthetic:size=640x480,fps=30,frames={frames}", "--quiet", "--out", out]
        kib = subprocess.run([sys.executable, "-c", MAX_RSS, *command], capture_output=True, text=True,
                             check=True).stdout.split()[-1]
        summary = json.loads((Path(out) / "live.json").read_text())
    return int(kib) / 1024, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/edgecnn-base-venv"))
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    pip_s = make_venv(args.venv)
    total, without_tooling, largest = sizes(args.venv)
    cold, loads = cold_starts(args.venv, args.bundle, args.repeats)
    rss_mib, live = live_peak_rss(args.venv, args.bundle, args.frames)
    python = subprocess.run([str(args.venv / "bin" / "python"), "-V"], capture_output=True, text=True).stdout.strip()
    body = "\n".join([
        "## Footprint of the base install (device runtime only)",
        "",
        f"A fresh venv ({python}) with only `pip install .` ({pip_s:.0f} s); bundle `{args.bundle.name}` "
        f"({tree_bytes(args.bundle / 'model.tflite') / MB:.2f} MB model). `benchmarks/footprint.py`.",
        "",
        "| measure | value | goal |",
        "|---|---:|---|",
        f"| site-packages, all | {total / MB:.0f} MB | |",
        f"| site-packages without pip/setuptools | {without_tooling / MB:.0f} MB | ≤ 350 MB |",
        f"| process start → first result, p50 of {args.repeats} | {cold['cold_start_ms'] / 1000:.3f} s | ≤ 0.5 s |",
        f"| of which `import edgecnn.runtime` (+ numpy) | {cold['import_ms'] / 1000:.3f} s | |",
        f"| of which `load(bundle)` with SHA-256 verify | {cold['load_verify_ms'] / 1000:.3f} s | |",
        f"| of which first inference | {cold['first_inference_ms'] / 1000:.3f} s | |",
        f"| CPU time (user + sys) of that process, p50 | {cold['cpu_ms'] / 1000:.3f} s | |",
        f"| peak RSS of `edgecnn live` (synthetic 640x480, {live['frames']['inferred']} frames inferred) | "
        f"{rss_mib:.0f} MiB | |",
        "",
        "Largest entries in site-packages: " + ", ".join(f"{name} {size / MB:.0f} MB" for name, size in largest) + ".",
        "",
        f"Load average (1 min) before the cold starts: {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores; "
        "a wall time well above the CPU time is time spent waiting for a core (or the disk).",
    ])
    print(body)
    write_section("footprint", body)


if __name__ == "__main__":
    main()

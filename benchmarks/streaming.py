"""Streaming image folders vs decoding them into memory: peak RSS as the set grows, and warm training throughput.

Writes folders of PNGs (Fashion-MNIST's IDX files when installed, else the built-in subset tiled with flips and
1-pixel shifts) of each size under --cache (kept for the next run), then trains the same recipe on each in fresh
processes, --repeats alternated pairs: data.cache_budget_mb large (the in-memory path) and tiny (streamed); the
table gives medians. Peak RSS is the process's ru_maxrss; "over imports" subtracts its RSS after importing
TensorFlow, Keras and edgecnn. Warm throughput is the last epoch's training images per second, from its first to its
last training batch (page cache and graph warm). The overlap ceiling sets the decode cost, measured on one thread,
against it: what streaming could reach on these cores if decoding and training overlapped perfectly.
Usage: python benchmarks/streaming.py [--sizes 5000 20000 60000] [--repeats 2] [--cache /tmp/edgecnn-stream-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402

IDX = Path("/usr/share/datasets/fashion-mnist")
MODES = {"in memory": 1e6, "streamed": 1.0}  # data.cache_budget_mb of each mode
MIB = 2**20


def source_images() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """(images, labels, class names, where they came from)."""
    from edgecnn.data.builtin import load_builtin
    from edgecnn.data.idx import find_idx_pair, read_idx

    names = load_builtin("fashion-mnist-subset").class_names
    pair = find_idx_pair(IDX, "train") if IDX.is_dir() else None
    if pair is not None:
        images = read_idx(pair[0])
        return images, read_idx(pair[1]).astype(np.int64), names, f"Fashion-MNIST train ({len(images):,} images)"
    arrays = load_builtin("fashion-mnist-subset")
    origin = f"the built-in Fashion-MNIST subset ({len(arrays.train_images):,} images)"
    return arrays.train_images, arrays.train_labels, names, origin


def variant(images: np.ndarray, k: int) -> np.ndarray:
    """The k-th copy of the images: flipped on odd k, shifted k // 2 pixels right, so copies are not identical."""
    shifted = np.roll(images, k // 2, axis=2)
    return shifted[:, :, ::-1] if k % 2 else shifted


def make_folder(root: Path, count: int) -> tuple[Path, str]:
    """root/<count>/<class>/*.png with `count` images (written once, reused while its marker file is there)."""
    import cv2

    images, labels, names, origin = source_images()
    folder = root / str(count)
    marker = folder / ".complete"
    if marker.is_file():
        return folder, marker.read_text()
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
    copies = -(-count // len(images))
    written = 0
    for k in range(copies):
        block = variant(images, k)
        for i in range(min(len(images), count - written)):
            cv2.imwrite(str(folder / names[labels[i]] / f"{k}_{i:05d}.png"), block[i])
            written += 1
    marker.write_text(origin)
    return folder, origin


CHILD = """
import json, resource, sys, time
import keras
from edgecnn.config import parse_recipe
from edgecnn.train.runner import train

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.first = None
        self.images = 0
    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.first is None:
            self.first = now  # the first batch of the epoch is where the last epoch's ends: not counted
        else:
            self.images += self.batch_size
        self.last = now

recipe = parse_recipe(json.loads(sys.argv[1]))
timer = EpochTimer()
timer.batch_size = recipe.train.batch_size
baseline = rss_mib()
started = time.perf_counter()
run = train(recipe, sys.argv[2], extra_callbacks=[timer])
metrics = json.loads(run.metrics.read_text())
print(json.dumps({"peak_mib": rss_mib(), "baseline_mib": baseline, "run_s": time.perf_counter() - started,
                  "images_per_s": timer.images / (timer.last - timer.first), "streamed": metrics["streamed"],
                  "train_images": metrics["data"]["train"], "test_top1": metrics["test"]["top1"]}))
"""


def measure(folder: Path, mode: str, model: str, args: argparse.Namespace, runs: Path) -> dict:
    """Train the benchmark recipe with `model` on `folder` in `mode` (one of MODES) in a fresh process; its
    measurements."""
    recipe = {
        "name": f"stream-{model}-{folder.name}-{mode.replace(' ', '-')}",
        "data": {"source": "folder", "path": str(folder), "image_size": args.image_size, "val_fraction": 0.05,
                 "test_fraction": 0.05, "cache_budget_mb": MODES[mode]},
        "model": {"name": model},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size},
        "export": {"calibration_images": 100},
    }
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(recipe), str(runs)], capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise SystemExit(f"training on {folder} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def decode_cost_us(folder: Path, image_size: int, files: int = 3000, passes: int = 3) -> float:
    """Microseconds per image of the streamed path's own `decode_file` on one thread: best of `passes` over up to
    `files` PNGs of `folder` (page cache warm after the first pass)."""
    from edgecnn.data.stream import decode_file

    paths = sorted(folder.rglob("*.png"))[:files]
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for path in paths:
            decode_file(path, (image_size, image_size), "stretch")
        best = min(best, (time.perf_counter() - started) / len(paths))
    return best * 1e6


def overlap_ceiling(images_per_s: float, decode_us: float) -> float:
    """The streamed / in-memory ratio if decoding overlapped training perfectly on the same cores: in-memory core
    time per image over that plus one decode."""
    core_us = (os.cpu_count() or 1) * 1e6 / images_per_s
    return core_us / (core_us + decode_us)


def _median_run(runs: list[dict]) -> dict:
    """One mode's runs as one: median images/s, the largest peak RSS (and its baseline), the test top-1."""
    peak = max(runs, key=lambda run: run["peak_mib"])
    return {**peak, "images_per_s": float(np.median([run["images_per_s"] for run in runs]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 60_000])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/edgecnn-stream-bench"))
    parser.add_argument("--model", default="tiny_cnn", help="trained at every size")
    parser.add_argument("--heavier-model", default="mobilenet_v3_small",
                        help="trained at --heavier-size only: more compute per image than tiny_cnn")
    parser.add_argument("--heavier-size", type=int, default=20_000)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="in-memory/streamed pairs per row (median taken)")
    args = parser.parse_args()

    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as runs:
        for count in args.sizes:
            started = time.perf_counter()
            folder, origin = make_folder(args.cache, count)
            print(f"{count:,} PNGs in {folder} ({time.perf_counter() - started:.0f} s)", flush=True)
            for model in [args.model] + ([args.heavier_model] if count == args.heavier_size else []):
                pairs = [{mode: measure(folder, mode, model, args, Path(runs) / f"pair{k}") for mode in MODES}
                         for k in range(args.repeats)]  # modes alternated, so a slow spell falls on both
                assert all([r["streamed"] for r in pair.values()] == [False, True] for pair in pairs), pairs
                rows.append((model, count, pairs))
                print(model, json.dumps(pairs), flush=True)
        decode_us = decode_cost_us(folder, args.image_size)
    load_after = os.getloadavg()

    decoded = lambda count: count * args.image_size**2 * 3 / MIB  # noqa: E731
    lines = [
        "## Streaming image folders (data.cache_budget_mb)",
        "",
        f"`benchmarks/streaming.py`: PNG folders of {origin} (28 px grey; copies beyond its images flipped and "
        f"shifted) at each size; the same recipe trained on each in fresh processes: "
        f"{args.model} at every size and {args.heavier_model} at {args.heavier_size:,} images, "
        f"{args.image_size} px, {args.epochs} epochs, batch {args.batch_size}, 5 % val and 5 % test "
        f"cut out of the folder, no augmentation, {args.repeats} alternated pairs of runs with "
        f"data.cache_budget_mb {MODES['in memory']:g} (decoded into memory) and {MODES['streamed']:g} (streamed: "
        "decoded in batches by one thread per core, 4 batches ahead). Peak RSS: the training process's ru_maxrss; "
        "over imports: less its RSS after importing "
        "TensorFlow, Keras and edgecnn. Warm images/s: training images of the last epoch per second, from its "
        "first training batch to its last (files in the page cache, graph traced). Decode: the streamed path's "
        f"`decode_file` (OpenCV decode + `fit_image`) takes {decode_us:.0f} µs per image on one thread (best of 3 "
        "passes over 3,000 of the largest folder's PNGs); overlap ceiling: the streamed / in-memory ratio that "
        f"perfect overlap of that decode with training on the same {os.cpu_count()} cores would give (in-memory core "
        "time per image over that plus one decode). Load average (1/5/15 min) before: "
        f"{' / '.join(f'{v:.1f}' for v in load_before)}, after: {' / '.join(f'{v:.1f}' for v in load_after)}.",
        "",
        "| model | images | decoded at model size | in memory: peak RSS (over imports) "
        "| streamed: peak RSS (over imports) | in memory images/s (median) | streamed images/s (median) "
        "| streamed / in memory, median (pairs) | overlap ceiling | test top-1 in memory / streamed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, count, pairs in rows:
        memory, streamed = (_median_run([pair[mode] for pair in pairs]) for mode in MODES)
        ratios = [pair["streamed"]["images_per_s"] / pair["in memory"]["images_per_s"] for pair in pairs]
        lines.append(
            f"| {model} | {count:,} | {decoded(count):.0f} MiB "
            f"| {memory['peak_mib']:.0f} MiB ({memory['peak_mib'] - memory['baseline_mib']:.0f}) "
            f"| {streamed['peak_mib']:.0f} MiB ({streamed['peak_mib'] - streamed['baseline_mib']:.0f}) "
            f"| {memory['images_per_s']:,.0f} | {streamed['images_per_s']:,.0f} "
            f"| {float(np.median(ratios)):.2f} ({', '.join(f'{r:.2f}' for r in ratios)}) "
            f"| {overlap_ceiling(memory['images_per_s'], decode_us):.2f} "
            f"| {100 * memory['test_top1']:.2f} % / {100 * streamed['test_top1']:.2f} % |"
        )
    write_section("streaming", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

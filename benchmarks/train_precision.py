"""`train.precision` on this machine: warm `edgecnn train` images/s for float32, mixed_bfloat16 and mixed_float16.

Mixed precision pays where the hardware has fast half-precision kernels (GPU tensor cores); on a CPU Keras may run
it slower than float32. This measures it, per backend, on the Fashion-MNIST hour recipe
(`recipes/fashion_mnist_cpu_hour_minimalistic.yaml`: its model, image size, batch and augmentation) with a capped
data set and a few epochs. Each backend runs in its own process (KERAS_BACKEND set); within it the precisions
alternate, `--repeats` rounds, and the table gives the median per precision and its ratio to float32 in the same
round. Warm images/s: epochs 2..N, epoch-end to epoch-end (as in train_throughput.py).
Usage: nice python benchmarks/train_precision.py [--backends tensorflow torch] [--per-class 256] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402
from train_throughput import EpochTimer, rates  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "fashion_mnist_cpu_hour_minimalistic.yaml"
BACKENDS = ("tensorflow", "jax", "torch")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def child(args: argparse.Namespace) -> None:
    """In a process of one backend: train once per precision per round; print the measurements as JSON."""
    from edgecnn.config import load_recipe
    from edgecnn.train.runner import train

    rounds = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):
            measured = {}
            for precision in PRECISIONS:
                recipe = load_recipe(RECIPE, {"data.max_per_class": args.per_class, "train.epochs": args.epochs,
                                              "train.precision": precision})
                timer = EpochTimer.create()
                run = train(recipe, out, overwrite=True, extra_callbacks=[timer])
                images = json.loads(run.metrics.read_text())["data"]["train"]
                measured[precision] = rates(timer, images, recipe.train.batch_size)["images_per_s"]
                print(precision, f"{measured[precision]:.0f} images/s", file=sys.stderr, flush=True)
            rounds.append(measured)
    print(json.dumps({"rounds": rounds, "train_images": images}))


def measure(backend: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{backend} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=["tensorflow", "torch"])
    parser.add_argument("--per-class", type=int, default=256, help="data.max_per_class (10 classes)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="rounds of all precisions per backend")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    started = time.perf_counter()
    measured = {backend: measure(backend) for backend in args.backends}
    from edgecnn.config import load_recipe

    recipe = load_recipe(RECIPE)
    lines = [
        "## Training precision on this machine (`train.precision`)",
        "",
        f"`benchmarks/train_precision.py`: `edgecnn train` on `{RECIPE.name}` ({recipe.model.name}, "
        f"{recipe.data.image_size} px, batch {recipe.train.batch_size}, its augmentation) with "
        f"`data.max_per_class` {args.per_class}, {args.epochs} epochs; each backend in its own process, the "
        f"precisions alternated, {args.repeats} rounds, medians; ratio: to float32 in the same round. Warm "
        "images/s: epochs 2..N, epoch-end to epoch-end.",
        "",
        "| backend | precision | training images | images/s | vs float32 |",
        "|---|---|---|---|---|",
    ]
    for backend, result in measured.items():
        for precision in PRECISIONS:
            speed = statistics.median(r[precision] for r in result["rounds"])
            ratio = statistics.median(r[precision] / r["float32"] for r in result["rounds"])
            lines.append(f"| {backend} | {precision} | {result['train_images']:,} | {speed:,.0f} | {ratio:.2f}× |")
    lines += ["", f"Whole benchmark {time.perf_counter() - started:.0f} s."]
    print("\n".join(lines))
    write_section("train_precision", "\n".join(lines))


if __name__ == "__main__":
    main()

"""`edgecnn train` against a bare `model.fit` on the same arrays and model: warm training images/s per backend.

Each Keras backend runs in its own process (KERAS_BACKEND set). In it, with augmentation off and on (the recipe's
horizontal flip + padded random crop), edgecnn's path and a bare fit alternate (edgecnn, bare, edgecnn, bare, ...)
so the load of the shared machine falls on both alike; the table gives the median of the paired ratios.

- edgecnn: `edgecnn.train.runner.train` on the recipe (its data loading, per-epoch validation, resume checkpoint,
  CSV history, learning-rate logging; the test metrics and plots after `fit` are not timed).
- bare: the same split's uint8 training arrays and one-hot labels, the same model (`runner.build_model`), optimizer
  and loss, `model.fit(x, y, batch_size, shuffle=True)` without validation or callbacks. Augmentation on: the same
  `keras.layers.Pipeline` (`build_augmentation`) mapped over a shuffled, batched `tf.data` dataset with
  `num_parallel_calls=AUTOTUNE` and `prefetch` on TensorFlow; on JAX and torch, applied in `__getitem__` of a plain
  `keras.utils.PyDataset` (default workers) over the same arrays.

Warm images/s: training images of epochs 2..N over the wall time from the end of epoch 1 to the end of epoch N (so
validation and epoch-end callbacks count); "steps only" is from the first to the last training batch of each warm
epoch (per-epoch validation and callbacks left out).
Usage: nice python benchmarks/train_throughput.py [--backends tensorflow jax torch] [--repeats 2]
       [--image-size 64 --per-class 1280 --section train_throughput_64px]  (the issue's setting: 11,520 images)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402

IDX = "/usr/share/datasets/fashion-mnist"
BACKENDS = ("tensorflow", "jax", "torch")
AUGMENTATIONS = {"off": {}, "flip + crop": {"horizontal_flip": True, "crop_padding": 4}}


def recipe_dict(args: argparse.Namespace, augment: dict, out: str) -> dict:
    return {
        "name": f"throughput-{len(augment)}",
        "data": {"source": "idx", "path": IDX, "image_size": args.image_size, "max_per_class": args.per_class,
                 "val_fraction": 0.1},
        "model": {"name": args.model},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size},
        "augment": augment,
        "export": {"calibration_images": 50},
    }


class EpochTimer:
    """A Keras callback (built lazily: keras is imported in the child only) timing epochs and training batches."""

    @staticmethod
    def create():
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.epoch_ends: list[float] = []
                self.steps: list[tuple[float, float, int]] = []  # (first batch end, last batch end, batches after)

            def on_epoch_begin(self, epoch, logs=None):
                self._first, self._count = None, 0

            def on_train_batch_end(self, batch, logs=None):
                now = time.perf_counter()
                if self._first is None:
                    self._first = now
                else:
                    self._count += 1
                self._last = now

            def on_epoch_end(self, epoch, logs=None):
                self.steps.append((self._first, self._last, self._count))
                self.epoch_ends.append(time.perf_counter())

        return Timer()


def rates(timer, images: int, batch_size: int) -> dict:
    """Warm images/s from the epoch timer (epoch 1 left out)."""
    ends = timer.epoch_ends
    warm = timer.steps[1:]
    return {
        "images_per_s": images * (len(ends) - 1) / (ends[-1] - ends[0]),
        "steps_per_s": sum(n * batch_size for _, _, n in warm) / sum(last - first for first, last, _ in warm),
    }


def child(args: argparse.Namespace) -> None:
    """In a process of one backend: alternate edgecnn and bare runs; print the measurements as JSON."""
    import tempfile

    import keras
    import numpy as np

    from edgecnn.config import parse_recipe
    from edgecnn.train.augment import build_augmentation
    from edgecnn.train.optim import loss, optimizer
    from edgecnn.train.runner import build_model, load_data, train

    def edgecnn_run(recipe, out: str) -> dict:
        timer = EpochTimer.create()
        train(recipe, out, overwrite=True, extra_callbacks=[timer])
        return rates(timer, train_images, recipe.train.batch_size)

    def bare_run(recipe, x: np.ndarray, y: np.ndarray) -> dict:
        keras.utils.set_random_seed(recipe.train.seed)
        model = build_model(recipe, y.shape[1])
        steps = -(-len(x) // recipe.train.batch_size)
        model.compile(optimizer=optimizer(recipe, recipe.train.learning_rate, steps * recipe.train.epochs),
                      loss=loss(recipe), metrics=["accuracy"])
        timer = EpochTimer.create()
        pipeline = build_augmentation(recipe.augment, recipe.train.seed, recipe.data.image_size)
        fit = {"epochs": recipe.train.epochs, "callbacks": [timer], "verbose": 0}
        if pipeline is None:
            model.fit(x, y, batch_size=recipe.train.batch_size, shuffle=True, **fit)
        elif keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            data = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).batch(recipe.train.batch_size)
                    .map(lambda images, labels: (pipeline(tf.cast(images, "float32"), training=True), labels),
                         num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
            model.fit(data, **fit)
        else:
            model.fit(Augmented(x, y, recipe.train.batch_size, pipeline), **fit)
        return rates(timer, len(x), recipe.train.batch_size)

    class Augmented(keras.utils.PyDataset):
        def __init__(self, x, y, batch_size, pipeline):
            super().__init__()
            self.x, self.y, self.batch_size, self.pipeline = x, y, batch_size, pipeline
            self.order = np.random.permutation(len(x))

        def __len__(self):
            return -(-len(self.x) // self.batch_size)

        def __getitem__(self, index):
            batch = self.order[index * self.batch_size : (index + 1) * self.batch_size]
            images = self.pipeline(self.x[batch].astype("float32"), training=True)
            return keras.ops.convert_to_numpy(images), self.y[batch]

        def on_epoch_end(self):
            self.order = np.random.permutation(len(self.x))

    results = {}
    with tempfile.TemporaryDirectory() as out:
        for name, augment in AUGMENTATIONS.items():
            recipe = parse_recipe(recipe_dict(args, augment, out))
            data = load_data(recipe)
            x, train_images = data.train.images, len(data.train)
            y = np.eye(len(data.class_names), dtype=np.float32)[data.train.labels]
            runs = []
            for _ in range(args.repeats):
                pair = {"edgecnn": edgecnn_run(recipe, out), "bare": bare_run(recipe, x, y)}
                runs.append(pair)
                print(name, json.dumps(pair), file=sys.stderr, flush=True)
            results[name] = {"runs": runs, "train_images": train_images}
    print(json.dumps(results))


def measure(backend: str, args: argparse.Namespace) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend}
    argv = [sys.executable, __file__, "--child", *sys.argv[1:]]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{backend} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--model", default="mobilenet_v3_small")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=200, help="data.max_per_class (10 classes)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="edgecnn/bare pairs per backend and augmentation")
    parser.add_argument("--section", default="train_throughput",
                        help="RESULTS.md section to write (another name keeps a run at other settings beside it)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    load_before = os.getloadavg()
    started = time.perf_counter()
    measured = {}
    for backend in args.backends:
        measured[backend] = measure(backend, args)
        print(backend, json.dumps(measured[backend]), flush=True)
    load_after = os.getloadavg()

    lines = [
        "## Training throughput: `edgecnn train` against a bare `model.fit`"
        + ("" if args.section == "train_throughput"
           else f" ({args.image_size} px, {args.per_class:,} images per class)")
        + ("" if set(args.backends) == set(BACKENDS) else f", {' and '.join(args.backends)}"),
        "",
        f"`benchmarks/train_throughput.py`: {args.model} at {args.image_size} px on Fashion-MNIST "
        f"(`data.max_per_class` {args.per_class}, 10 % validation), batch {args.batch_size}, {args.epochs} epochs, "
        f"Adam with cosine decay; each backend in its own process; edgecnn and bare runs alternated, {args.repeats} "
        "pairs per row, the ratio is the median of the pairs. edgecnn: `runner.train` (per-epoch validation, "
        "resume checkpoint, CSV history, learning-rate logging). Bare: `model.fit` on the same uint8 arrays and "
        "one-hot labels, same model, optimizer and loss, no validation, no callbacks; augmentation on: the same "
        "`keras.layers.Pipeline` mapped over a batched `tf.data` dataset (parallel map, prefetch) on TensorFlow, "
        "applied in a plain `PyDataset` on JAX and torch. Warm images/s: epochs 2..N, epoch-end to epoch-end "
        "(validation and callbacks included); steps only: first to last training batch of each warm epoch. Goal: "
        "edgecnn ≥ 0.9× bare.",
        "",
        "| backend | augmentation | training images | edgecnn images/s | bare images/s | edgecnn / bare "
        "| steps only: edgecnn / bare images/s | steps-only ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, by_augment in measured.items():
        for name, result in by_augment.items():
            runs = result["runs"]
            median = lambda key, who, runs=runs: statistics.median(r[who][key] for r in runs)  # noqa: E731
            ratio = statistics.median(r["edgecnn"]["images_per_s"] / r["bare"]["images_per_s"] for r in runs)
            steps = statistics.median(r["edgecnn"]["steps_per_s"] / r["bare"]["steps_per_s"] for r in runs)
            lines.append(
                f"| {backend} | {name} | {result['train_images']:,} | {median('images_per_s', 'edgecnn'):,.0f} "
                f"| {median('images_per_s', 'bare'):,.0f} | {ratio:.2f}× "
                f"| {median('steps_per_s', 'edgecnn'):,.0f} / {median('steps_per_s', 'bare'):,.0f} | {steps:.2f}× |"
            )
    lines += [
        "",
        f"Load average (1/5/15 min) before: {' / '.join(f'{v:.1f}' for v in load_before)}, after: "
        f"{' / '.join(f'{v:.1f}' for v in load_after)}; whole benchmark {time.perf_counter() - started:.0f} s.",
    ]
    write_section(args.section, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

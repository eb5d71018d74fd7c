"""Precision policy and distributed training on the engines that exist (never a home-made one).

`mirrored` and `multi_worker` are tf.distribute strategies (the TensorFlow backend; multi_worker reads TF_CONFIG),
`data_parallel` is keras.distribution.DataParallel (the JAX backend). Other combinations are refused up front.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import keras

from edgecnn.errors import RecipeError, require


def _mirrored() -> Any:
    tf = require("tensorflow", "train.distribute: mirrored", "pip install tensorflow")
    return tf.distribute.MirroredStrategy()


def _multi_worker() -> Any:
    import json
    import os

    if "TF_CONFIG" not in os.environ:
        raise RecipeError(
            "train.distribute: multi_worker needs TF_CONFIG in the environment (cluster worker addresses and this "
            'worker\'s task, e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": '
            '"worker", "index": 0}})'
        )
    try:
        json.loads(os.environ["TF_CONFIG"])
    except ValueError as exc:
        raise RecipeError(f"train.distribute: multi_worker: TF_CONFIG is not valid JSON ({exc})") from None
    tf = require("tensorflow", "train.distribute: multi_worker", "pip install tensorflow")
    from edgecnn.train import keras_multi_worker

    keras_multi_worker.apply()  # Keras 3's trainer fails under this strategy without it (see that module)
    return tf.distribute.MultiWorkerMirroredStrategy()


def _data_parallel() -> Any:
    return keras.distribution.DataParallel(devices=keras.distribution.list_devices())


# recipe value → (the Keras backend it runs on, factory of an object with .scope())
STRATEGIES: dict[str, tuple[str, Callable[[], Any]]] = {
    "mirrored": ("tensorflow", _mirrored),
    "multi_worker": ("tensorflow", _multi_worker),
    "data_parallel": ("jax", _data_parallel),
}


def check_distribute(name: str, backend: str | None = None) -> None:
    """Raise a RecipeError unless `name` runs on `backend` (default: the current Keras backend)."""
    backend = backend or keras.backend.backend()
    if name == "none":
        return
    engine, _ = STRATEGIES[name]
    if backend != engine:
        available = [n for n, (b, _) in STRATEGIES.items() if b == backend]
        offer = f"on {backend} use: {', '.join(available)}" if available else f"{backend} offers no distribution here"
        raise RecipeError(
            f"train.distribute: {name} runs on the {engine} backend (KERAS_BACKEND={engine}), this run uses "
            f"{backend}; {offer}, or none"
        )


def _devices(strategy: Any) -> list[str]:
    if strategy is None:
        if keras.backend.backend() == "torch":  # Keras has no distribution library for torch
            import torch

            return ["cuda:0" if torch.cuda.is_available() else "cpu:0"]
        return keras.distribution.list_devices()[:1]  # a single-device run uses the first (a GPU when present)
    if hasattr(strategy, "extended"):  # tf.distribute
        return [str(d) for d in strategy.extended.worker_devices]
    return [str(d) for d in strategy.device_mesh.devices.flatten()]


@contextmanager
def distribution_scope(name: str) -> Iterator[list[str]]:
    """Build and train inside this scope; yields the devices the run trains on."""
    check_distribute(name)
    if name == "none":
        yield _devices(None)
        return
    strategy = STRATEGIES[name][1]()
    with strategy.scope():
        yield _devices(strategy)


def _is_cpu(device: str) -> bool:
    name = device.lower().rsplit("/", 1)[-1]  # tf.distribute names end in device:CPU:0
    return name.startswith(("cpu", "device:cpu"))


def cpu_precision_note(precision: str, devices: list[str]) -> str | None:
    """A line for the user when mixed precision trains on CPUs only: without half-precision kernels Keras runs it
    slower than float32 (measured in benchmarks/RESULTS.md, "Training precision")."""
    if precision == "float32" or not all(_is_cpu(device) for device in devices):
        return None
    return (f"note: train.precision {precision} on CPU only; on the CPU in benchmarks/RESULTS.md (Training "
            "precision) mixed precision trained slower than float32")


@contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to `name` (float32, mixed_float16, mixed_bfloat16) inside the block."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)

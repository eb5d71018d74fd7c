"""Precision and devices: mixed-precision training saves a float32 model that exports through the same parity checks;
tf.distribute MirroredStrategy on two logical CPU devices; unsupported engine/backend combinations refused."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgecnn.config import parse_recipe
from edgecnn.errors import RecipeError

keras = pytest.importorskip("keras")


def _recipe(data: Path, **train) -> dict:
    return {
        "name": "engines",
        "data": {"source": "folder", "path": str(data), "image_size": 16, "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "tiny_cnn", "dropout": 0.0},
        "train": {"epochs": 2, "batch_size": 6, "learning_rate": 0.01, **train},
        "export": {"calibration_images": 6},
    }


class Dtypes(keras.callbacks.Callback):
    """Compute dtypes of the first conv and the softmax layer while training."""

    def on_train_begin(self, logs=None):
        self.conv = self.model.get_layer("backbone").get_layer("conv0").compute_dtype
        self.softmax = self.model.layers[-1].compute_dtype
        self.loss_scaled = type(self.model.optimizer).__name__


def test_mixed_float16_trains_and_exports_a_float32_model(
    image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgecnn.export.backend import require_tensorflow_backend

    require_tensorflow_backend()
    from edgecnn.export.pipeline import export_run
    from edgecnn.train.runner import train

    dtypes = Dtypes()
    run = train(parse_recipe(_recipe(image_folder, precision="mixed_float16", tta=["hflip"])), tmp_path,
                extra_callbacks=[dtypes])
    assert (dtypes.conv, dtypes.softmax, dtypes.loss_scaled) == ("float16", "float32", "LossScaleOptimizer")
    assert "train.precision mixed_float16 on CPU only" in capsys.readouterr().out  # this machine has no GPU
    assert keras.config.dtype_policy().name == "float32"  # the policy is restored after training
    model = keras.saving.load_model(run.model, compile=False)
    assert {layer.dtype_policy.name for layer in model.get_layer("backbone").layers} == {"float32"}
    assert all(w.dtype == "float32" for w in model.weights)
    metrics = json.loads(run.metrics.read_text())
    assert metrics["precision"] == "mixed_float16" and metrics["devices"] == ["cpu:0"]
    assert metrics["test_tta"]["hflip"]["view_count"] == 2
    assert 0.0 <= metrics["test_tta"]["hflip"]["top1"] <= 1.0
    result = export_run(run.root, "tflite", "float32", tmp_path / "bundles")
    assert result.passed and result.manifest.precision == "float32"  # the same parity checks as float32 training


@pytest.mark.parametrize(
    ("precision", "devices", "noted"),
    [
        ("mixed_bfloat16", ["cpu:0"], True),
        ("mixed_float16", ["/job:localhost/replica:0/task:0/device:CPU:0"] * 2, True),
        ("mixed_bfloat16", ["gpu:0"], False),
        ("mixed_float16", ["cuda:0"], False),
        ("mixed_float16", ["/job:worker/replica:0/task:0/device:GPU:0"], False),
        ("float32", ["cpu:0"], False),
    ],
)
def test_mixed_precision_on_cpu_only_gets_a_note(precision: str, devices: list[str], noted: bool) -> None:
    from edgecnn.train.engines import cpu_precision_note

    note = cpu_precision_note(precision, devices)
    assert (note is not None) == noted
    if noted:
        assert precision in note and "RESULTS.md" in note


MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from edgecnn.config import parse_recipe
from edgecnn.train.runner import train
run = train(parse_recipe(json.loads(sys.argv[1])), sys.argv[2])
print("METRICS", json.dumps(json.loads(run.metrics.read_text())["devices"]))
"""


def test_mirrored_strategy_on_two_logical_cpus(image_folder: Path, tmp_path: Path) -> None:
    recipe = _recipe(image_folder, distribute="mirrored")
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MIRRORED_SCRIPT), json.dumps(recipe), str(tmp_path)],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "KERAS_BACKEND": "tensorflow"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    devices = json.loads(done.stdout.split("METRICS", 1)[1])
    assert len(devices) == 2 and all("CPU:" in d for d in devices), devices
    assert (tmp_path / "engines" / "model.keras").is_file()


def test_unsupported_combinations_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgecnn.train.engines import check_distribute, distribution_scope

    with pytest.raises(RecipeError, match=r"data_parallel runs on the jax backend .* on tensorflow use: mirrored, "
                                          r"multi_worker, or none"):
        check_distribute("data_parallel", "tensorflow")
    with pytest.raises(RecipeError, match="mirrored runs on the tensorflow backend .* torch offers no distribution"):
        check_distribute("mirrored", "torch")
    check_distribute("none", "torch")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if keras.backend.backend() == "tensorflow":
        with pytest.raises(RecipeError, match="multi_worker needs TF_CONFIG"):
            with distribution_scope("multi_worker"):
                pass
    with pytest.raises(RecipeError, match="train.precision"):
        parse_recipe({**_recipe(Path(".")), "train": {"precision": "float16"}})
    with pytest.raises(RecipeError, match="train.distribute"):
        parse_recipe({**_recipe(Path(".")), "train": {"distribute": "horovod"}})


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


WORKER_SCRIPT = """
import json, sys
from edgecnn.config import parse_recipe
from edgecnn.train.runner import train
run = train(parse_recipe(json.loads(sys.argv[1])), sys.argv[2])
print("METRICS", json.dumps(json.loads(run.metrics.read_text())["devices"]))
"""


def test_multi_worker_workaround_names_what_a_changed_keras_lacks(monkeypatch):
    pytest.importorskip("tensorflow")
    from keras.src.backend.tensorflow import trainer

    from edgecnn.train import keras_multi_worker

    monkeypatch.setattr(keras_multi_worker, "_applied", False)
    monkeypatch.delattr(trainer, "_collective_all_reduce_multi_worker")
    keras_reduce = trainer.reduce_per_replica
    with pytest.raises(RecipeError, match=r"multi_worker: Keras .* has no _collective_all_reduce_multi_worker"):
        keras_multi_worker.apply()
    assert trainer.reduce_per_replica is keras_reduce and keras_multi_worker._applied is False  # nothing patched


# Two real TensorFlow worker processes on localhost ports. Keras 3's trainer needs edgecnn.train.keras_multi_worker
# under this strategy (tensorflow/tensorflow#72388); this test is what fails if that workaround stops working.
def test_multi_worker_mirrored_two_processes_on_localhost(image_folder: Path, tmp_path: Path) -> None:
    """MultiWorkerMirroredStrategy across two local processes (TF_CONFIG); each worker writes its own run copy."""
    import os

    workers = [f"localhost:{port}" for port in _free_ports(2)]
    recipe = json.dumps(_recipe(image_folder, distribute="multi_worker"))
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CONFIG": tf_config}
        processes.append(subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKER_SCRIPT), recipe, str(tmp_path / f"worker{index}")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        ))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=300))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
        devices = json.loads(out.split("METRICS", 1)[1])
        assert len(devices) == 1 and "worker" in devices[0], devices
    assert all((tmp_path / f"worker{i}" / "engines" / "model.keras").is_file() for i in range(2))
    # one synchronised model: both workers log the same (all-reduced) losses, epoch by epoch
    losses = [[row["loss"] for row in csv.DictReader((tmp_path / f"worker{i}" / "engines" / "history.csv").open())]
              for i in range(2)]
    assert len(losses[0]) == 2 and losses[0] == losses[1], losses

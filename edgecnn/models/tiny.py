"""A tiny CNN for tests and smoke runs: seconds to train, same input/output contract as the zoo."""

from __future__ import annotations

from edgecnn.errors import WeightsError
from edgecnn.models.heads import BACKBONE_NAME, DEFAULT_DROPOUT, classifier, image_input
from edgecnn.models.registry import register_model


@register_model(
    "tiny_cnn", default_image_size=32, family="tiny", normalisation="x / 255 (inside the model)",
    quantization_friendly=True, min_image_size=8,
)
def tiny_cnn(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """Two conv blocks and a dense head (width scales the filters)."""
    import keras

    if weights not in (None, "none", ""):
        raise WeightsError(f"tiny_cnn has no pretrained weights; got weights={weights!r}")
    inputs = image_input(image_size)
    filters = [max(4, int(round(f * width))) for f in (16, 32)]
    body_in = keras.Input(shape=(image_size, image_size, 3), name="backbone_input")
    x = keras.layers.Rescaling(1 / 255.0, name="normalise")(body_in)
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"conv{i}_bn")(x)
        x = keras.layers.ReLU(max_value=6.0, name=f"conv{i}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    backbone = keras.Model(body_in, x, name=BACKBONE_NAME)
    return classifier(inputs, backbone(inputs), num_classes, dropout, name="tiny_cnn")

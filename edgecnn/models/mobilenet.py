"""MobileNet family from keras.applications, with edgecnn's input/head conventions."""

from __future__ import annotations

from edgecnn.models.heads import BACKBONE_NAME, classifier, image_input, keras_application, resolve_weights
from edgecnn.models.registry import register_model

_MINUS_ONE_TO_ONE = "x / 127.5 - 1 (inside the model)"


@register_model(
    "mobilenet_v2", default_image_size=224, family="mobilenet", normalisation=_MINUS_ONE_TO_ONE,
    quantization_friendly=True,
)
def mobilenet_v2(num_classes: int, image_size: int, width: float, weights: str | None, dropout: float):
    """MobileNetV2 (inverted residuals, ReLU6): the int8-friendly workhorse."""
    import keras

    weights = resolve_weights(weights, "mobilenet_v2")
    inputs = image_input(image_size)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalise")(inputs)
    backbone = keras_application(
        keras.applications.MobileNetV2, "mobilenet_v2", weights,
        input_shape=(image_size, image_size, 3), alpha=width, include_top=False, name=BACKBONE_NAME,
    )
    return classifier(inputs, backbone(x), num_classes, dropout, name="mobilenet_v2")


@register_model(
    "mobilenet_v3_small", default_image_size=224, family="mobilenet", normalisation=_MINUS_ONE_TO_ONE,
    quantization_friendly=False,
)
def mobilenet_v3_small(num_classes: int, image_size: int, width: float, weights: str | None, dropout: float):
    """MobileNetV3-Small (hard-swish, squeeze-excite): fast in float, int8-hostile without care."""
    import keras

    weights = resolve_weights(weights, "mobilenet_v3_small")
    inputs = image_input(image_size)
    backbone = keras_application(
        keras.applications.MobileNetV3Small, "mobilenet_v3_small", weights,
        input_shape=(image_size, image_size, 3), alpha=width, include_top=False,
        include_preprocessing=True, name=BACKBONE_NAME,
    )
    return classifier(inputs, backbone(inputs), num_classes, dropout, name="mobilenet_v3_small")

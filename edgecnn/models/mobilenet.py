"""MobileNet family (V1, V2, V3 and V3 minimalistic) from keras.applications, with edgecnn's conventions.

MobileNetV3's last 1×1 conv (1024 / 1280 channels, after global pooling) sits in Keras' `include_top` part, yet
the paper counts it in the network and TF-Hub's feature vectors come out of it. Here it ends the backbone:
backbone = Keras V3 up to that conv and its activation (a 1×1 feature map), head = pool → dropout → softmax, so
parameter counts match the paper and `weights: imagenet` loads that conv pretrained too.
"""

from __future__ import annotations

from edgecnn.models.applications import assemble, keras_backbone, split_weights
from edgecnn.models.heads import DEFAULT_DROPOUT
from edgecnn.models.registry import register_model

_MINUS_ONE_TO_ONE = "x / 127.5 - 1 (inside the model)"


def _minus_one_to_one(pixels):
    import keras

    return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalise")(pixels)


@register_model(
    "mobilenet_v1", default_image_size=224, family="mobilenet", normalisation=_MINUS_ONE_TO_ONE,
    quantization_friendly=True,
)
def mobilenet_v1(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """MobileNetV1 (depthwise-separable convs, ReLU6): the original edge CNN."""
    import keras

    backbone_weights, weights_file = split_weights(weights, "mobilenet_v1")
    backbone = keras_backbone(
        keras.applications.MobileNet, "mobilenet_v1", image_size, backbone_weights, normalise=_minus_one_to_one,
        alpha=width, include_top=False,
    )
    return assemble("mobilenet_v1", backbone, num_classes, dropout, weights_file)


@register_model(
    "mobilenet_v2", default_image_size=224, family="mobilenet", normalisation=_MINUS_ONE_TO_ONE,
    quantization_friendly=True,
)
def mobilenet_v2(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """MobileNetV2 (inverted residuals, ReLU6): the int8-friendly workhorse."""
    import keras

    backbone_weights, weights_file = split_weights(weights, "mobilenet_v2")
    backbone = keras_backbone(
        keras.applications.MobileNetV2, "mobilenet_v2", image_size, backbone_weights,
        normalise=_minus_one_to_one, alpha=width, include_top=False,
    )
    return assemble("mobilenet_v2", backbone, num_classes, dropout, weights_file)


def _mobilenet_v3(
    name: str, factory_name: str, minimalistic: bool,
    num_classes: int, image_size: int, width: float, weights: str | None, dropout: float,
):
    """Shared MobileNetV3 builder: backbone up to the activated last 1×1 conv (see the module docstring)."""
    import keras

    backbone_weights, weights_file = split_weights(weights, name)
    backbone = keras_backbone(
        getattr(keras.applications, factory_name), name, image_size, backbone_weights,
        # dropout_rate=0 makes the tensor feeding Keras' "logits" conv the activated output of the last 1×1 conv.
        features=lambda application: application.get_layer("logits").input,
        alpha=width, minimalistic=minimalistic, include_top=True, dropout_rate=0.0, include_preprocessing=True,
    )
    return assemble(name, backbone, num_classes, dropout, weights_file)


@register_model(
    "mobilenet_v3_small", default_image_size=224, family="mobilenet", normalisation=_MINUS_ONE_TO_ONE,
    quantization_friendly=False,
)
def mobilenet_v3_small(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """MobileNetV3-Small (hard-swish, squeeze-excite): fast in float, int8-hostile without care."""
    return _mobilenet_v3(
        "mobilenet_v3_small", "MobileNetV3Small", False, num_classes, image_size, width, weights, dropout
    )


@register_model(
    "mobilenet_v3_large", default_image_size=224, family="mobilenet", normalisation=_MINUS_ONE_TO_ONE,
    quantization_friendly=False,
)
def mobilenet_v3_large(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """MobileNetV3-Large (hard-swish, squeeze-excite): accurate in float, int8-hostile without care."""
    return _mobilenet_v3(
        "mobilenet_v3_large", "MobileNetV3Large", False, num_classes, image_size, width, weights, dropout
    )


@register_model(
    "mobilenet_v3_small_minimalistic", default_image_size=224, family="mobilenet",
    normalisation=_MINUS_ONE_TO_ONE, quantization_friendly=True,
)
def mobilenet_v3_small_minimalistic(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """MobileNetV3-Small minimalistic (ReLU, 3×3, no squeeze-excite): the int8-friendly V3."""
    return _mobilenet_v3(
        "mobilenet_v3_small_minimalistic", "MobileNetV3Small", True,
        num_classes, image_size, width, weights, dropout,
    )


@register_model(
    "mobilenet_v3_large_minimalistic", default_image_size=224, family="mobilenet",
    normalisation=_MINUS_ONE_TO_ONE, quantization_friendly=True,
)
def mobilenet_v3_large_minimalistic(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """MobileNetV3-Large minimalistic (ReLU, 3×3, no squeeze-excite): the int8-friendly V3."""
    return _mobilenet_v3(
        "mobilenet_v3_large_minimalistic", "MobileNetV3Large", True,
        num_classes, image_size, width, weights, dropout,
    )

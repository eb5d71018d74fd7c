"""EfficientNet-B0 and EfficientNetV2-B0 from keras.applications (swish + squeeze-excite: float models)."""

from __future__ import annotations

from edgecnn.models.applications import assemble, keras_backbone, split_weights
from edgecnn.models.heads import DEFAULT_DROPOUT
from edgecnn.models.registry import register_model

_IMAGENET_MEAN_STD = "(x / 255 - ImageNet mean) / ImageNet std (inside the model)"
_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


@register_model(
    "efficientnet_b0", default_image_size=224, family="efficientnet", normalisation=_IMAGENET_MEAN_STD,
    quantization_friendly=False, has_width=False,
)
def efficientnet_b0(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """EfficientNet-B0 (swish, squeeze-excite): accurate in float, int8-hostile."""
    import keras
    import numpy as np

    backbone_weights, weights_file = split_weights(weights, "efficientnet_b0")
    backbone = keras_backbone(keras.applications.EfficientNetB0, "efficientnet_b0", image_size, None, include_top=False)
    if backbone_weights == "imagenet":
        _load_imagenet_b0(backbone, image_size)
    else:  # Keras leaves its Normalization at mean 0, variance 1 unless it loads ImageNet weights
        _set_normalisation(backbone, _IMAGENET_MEAN_RGB, np.square(_IMAGENET_STD_RGB))
    return assemble("efficientnet_b0", backbone, num_classes, dropout, weights_file)


def _set_normalisation(backbone, mean, variance) -> None:
    import keras

    layer = next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Normalization))
    layer.adapt_mean.assign(mean)
    layer.adapt_variance.assign(variance)
    layer.finalize_state()  # the layer computes with a snapshot of its variables, taken here


def _load_imagenet_b0(backbone, image_size: int) -> None:
    """Copy Keras' ImageNet EfficientNet-B0 into `backbone`, folding its extra input scaling into the weights.

    With weights="imagenet" Keras inserts one more Rescaling (1 / sqrt(std)) after its Normalization layer, so
    that graph differs from the one a local weights file is later loaded into. Folding the factor into the
    Normalization variance keeps one graph for every weight source: (x - m) / sqrt(v) / sqrt(s) needs v' = v·s.
    """
    import keras
    import numpy as np

    pretrained = keras_backbone(
        keras.applications.EfficientNetB0, "efficientnet_b0", image_size, "imagenet", include_top=False
    )
    backbone.set_weights(pretrained.get_weights())
    normalisation = next(layer for layer in pretrained.layers if isinstance(layer, keras.layers.Normalization))
    mean, variance = (keras.ops.convert_to_numpy(v) for v in (normalisation.adapt_mean, normalisation.adapt_variance))
    _set_normalisation(backbone, mean, variance * np.asarray(_IMAGENET_STD_RGB))


@register_model(
    "efficientnetv2_b0", default_image_size=224, family="efficientnet", normalisation=_IMAGENET_MEAN_STD,
    quantization_friendly=False, has_width=False,
)
def efficientnetv2_b0(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """EfficientNetV2-B0 (fused MBConv, swish, squeeze-excite): fast to train, float-first."""
    import keras

    backbone_weights, weights_file = split_weights(weights, "efficientnetv2_b0")
    backbone = keras_backbone(
        keras.applications.EfficientNetV2B0, "efficientnetv2_b0", image_size, backbone_weights,
        include_top=False, include_preprocessing=True,
    )
    return assemble("efficientnetv2_b0", backbone, num_classes, dropout, weights_file)

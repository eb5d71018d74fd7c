"""Classic CNNs for teaching: LeNet-5, VGG16, ResNet50 and ResNet-9, with their textbook layer sizes and parameter
counts.

LeNet-5 and VGG16 keep their flatten → fully-connected heads, so their parameter counts depend on the input
size exactly as in the textbooks (LeNet-5: 61,706 at 32 px with 10 classes; VGG16: 138.4 M at 224 px with 1000).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.applications import assemble, keras_backbone, load_weights_file, split_weights
from edgecnn.models.heads import BACKBONE_NAME, DEFAULT_DROPOUT, classifier, image_input
from edgecnn.models.registry import register_model

if TYPE_CHECKING:
    import keras

# ITU-R BT.601 luma weights, the usual RGB → grey conversion.
_LUMA_RGB = (0.299, 0.587, 0.114)
# Stage widths of Myrtle.ai's DAWNBench ResNet-9 (D. Page, "How to train your ResNet", 2018) at width 1.0.
_RESNET9_CHANNELS = (64, 128, 256, 512)
# Mean pixel of the Caffe-trained VGG/ResNet ImageNet weights, in RGB order.
_CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)
_CAFFE_NORMALISATION = "x - ImageNet mean pixel, Caffe style (inside the model)"


def _dense_head(
    inputs: keras.KerasTensor, features: keras.KerasTensor, hidden: tuple[tuple[str, int], ...], activation: str,
    num_classes: int, dropout: float, name: str,
) -> keras.Model:
    """Flatten → named fully-connected layers → dropout → softmax: the pre-global-pooling head."""
    import keras

    x = keras.layers.Flatten(name="flatten")(features)
    for layer_name, units in hidden:
        x = keras.layers.Dense(units, activation=activation, name=layer_name)(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def _grey(pixels: keras.KerasTensor, image_size: int) -> keras.KerasTensor:
    """RGB 0..255 → one grey channel in 0..1 without parameters, so LeNet-5 keeps its 1-channel counts."""
    import keras

    weighted = keras.layers.Rescaling([3 * w / 255.0 for w in _LUMA_RGB], name="luma_weights")(pixels)
    x = keras.layers.Reshape((image_size * image_size, 3), name="pixels_by_channel")(weighted)
    # The mean over the 3 weighted channels is the luma sum (weights pre-multiplied by 3 above).
    x = keras.layers.GlobalAveragePooling1D(data_format="channels_first", name="grey")(x)
    return keras.layers.Reshape((image_size, image_size, 1), name="grey_image")(x)


@register_model(
    "lenet5", default_image_size=32, family="classic", quantization_friendly=True, has_width=False,
    normalisation="grey = (0.299 R + 0.587 G + 0.114 B) / 255 (inside the model)",
)
def lenet5(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """LeNet-5 (LeCun 1998; tanh, average pooling) on a grey conversion of the RGB input."""
    import keras

    _, weights_file = split_weights(weights, "lenet5", imagenet=False)
    pixels = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="pixels")
    x = _grey(pixels, image_size)
    x = keras.layers.Conv2D(6, 5, activation="tanh", name="c1")(x)
    x = keras.layers.AveragePooling2D(2, name="s2")(x)
    x = keras.layers.Conv2D(16, 5, activation="tanh", name="c3")(x)
    x = keras.layers.AveragePooling2D(2, name="s4")(x)
    x = keras.layers.Conv2D(120, 5, activation="tanh", name="c5")(x)
    backbone = keras.Model(pixels, x, name=BACKBONE_NAME)
    inputs = image_input(image_size)
    model = _dense_head(inputs, backbone(inputs), (("f6", 84),), "tanh", num_classes, dropout, "lenet5")
    return load_weights_file(model, weights_file)


def _subtract_caffe_mean(pixels: keras.KerasTensor) -> keras.KerasTensor:
    import keras

    return keras.layers.Rescaling(1.0, offset=[-m for m in _CAFFE_MEAN_RGB], name="normalise")(pixels)


def _caffe_backbone(factory, model_name: str, image_size: int, weights: str | None, first_conv: str):
    """A Caffe-style keras.applications backbone (BGR, mean-subtracted) that takes RGB pixels."""
    import keras
    import numpy as np

    backbone = keras_backbone(
        factory, model_name, image_size, weights, normalise=_subtract_caffe_mean, include_top=False
    )
    if weights == "imagenet":
        # The weights expect BGR input: reversing the first conv's input channels makes them take RGB at no cost.
        conv = backbone.get_layer(first_conv)
        conv.kernel.assign(np.ascontiguousarray(keras.ops.convert_to_numpy(conv.kernel)[:, :, ::-1, :]))
    return backbone


@register_model(
    "vgg16", default_image_size=224, family="classic", normalisation=_CAFFE_NORMALISATION,
    quantization_friendly=True, has_width=False,
)
def vgg16(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """VGG16 (13 3×3 convs + fc1/fc2 4096): 138 M parameters, most of them in fc1."""
    import keras

    backbone_weights, weights_file = split_weights(weights, "vgg16")
    # ImageNet weights cover the conv base; fc1/fc2 start fresh because fc1's shape depends on the image size.
    backbone = _caffe_backbone(keras.applications.VGG16, "vgg16", image_size, backbone_weights, "block1_conv1")
    inputs = image_input(image_size)
    model = _dense_head(
        inputs, backbone(inputs), (("fc1", 4096), ("fc2", 4096)), "relu", num_classes, dropout, "vgg16"
    )
    return load_weights_file(model, weights_file)


@register_model(
    "resnet50", default_image_size=224, family="classic", normalisation=_CAFFE_NORMALISATION,
    quantization_friendly=True, has_width=False,
)
def resnet50(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """ResNet50 (bottleneck residual blocks, ReLU): the reference server CNN."""
    import keras

    backbone_weights, weights_file = split_weights(weights, "resnet50")
    backbone = _caffe_backbone(keras.applications.ResNet50, "resnet50", image_size, backbone_weights, "conv1_conv")
    return assemble("resnet50", backbone, num_classes, dropout, weights_file)


def _conv_bn_relu(x: keras.KerasTensor, filters: int, name: str, pool: bool = False) -> keras.KerasTensor:
    """3×3 conv (no bias) → optional 2×2 max pool → BN → ReLU: ResNet-9's one building block."""
    import keras

    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    if pool:
        x = keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


@register_model(
    "resnet9", default_image_size=32, family="classic", normalisation="x / 255 (inside the model)",
    quantization_friendly=True, min_image_size=8,
)
def resnet9(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = DEFAULT_DROPOUT,
):
    """ResNet-9 (Myrtle.ai's DAWNBench CIFAR net): 8 dense 3×3 convs, 2 residual pairs, max pooling to stride 8.

    Built for 32 px: no stride-2 stem, so small images keep their detail. The head is the zoo's (global average
    pooling → dropout → softmax) where Page's uses max pooling and a logit scale.
    """
    import keras

    _, weights_file = split_weights(weights, "resnet9", imagenet=False)
    prep, layer1, layer2, layer3 = (max(8, int(round(c * width))) for c in _RESNET9_CHANNELS)
    pixels = keras.Input(shape=(image_size, image_size, 3), name="backbone_input")
    x = keras.layers.Rescaling(1 / 255.0, name="normalise")(pixels)
    x = _conv_bn_relu(x, prep, "prep")
    for stage, filters, residual in (("layer1", layer1, True), ("layer2", layer2, False), ("layer3", layer3, True)):
        x = _conv_bn_relu(x, filters, stage, pool=True)
        if residual:
            branch = _conv_bn_relu(_conv_bn_relu(x, filters, f"{stage}_res1"), filters, f"{stage}_res2")
            x = keras.layers.Add(name=f"{stage}_add")([x, branch])
    backbone = keras.Model(pixels, x, name=BACKBONE_NAME)
    inputs = image_input(image_size)
    model = classifier(inputs, backbone(inputs), num_classes, dropout, name="resnet9")
    return load_weights_file(model, weights_file)

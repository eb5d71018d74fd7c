"""EfficientNet-Lite0…4: EfficientNet made for int8 on mobile CPUs, DSPs and NPUs.

Reference: tensorflow/tpu models/official/efficientnet/lite (Apache-2.0). Compared with EfficientNet-B0…B4:
ReLU6 instead of swish and no squeeze-and-excitation (both collapse under full-integer quantisation), and the
stem (32 channels), the head (1280 channels) and the repeats of the first and last stages are not scaled, so
the larger variants do not pay for scaling where it buys nothing. Pixels are normalised inside the model as
(x − 127) / 128, the TF reference's mean and std.

Layer names follow keras.applications.EfficientNet (`stem_conv`, `block2a_expand_conv`, `block2a_dwconv`,
`block2a_project_bn`, `top_conv`, …) so weights port by name; `block_specs` lists the blocks in build order,
which is also the order of the reference implementations' `blocks.N` indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgecnn.models import lite_weights
from edgecnn.models.applications import assemble, split_weights
from edgecnn.models.heads import BACKBONE_NAME
from edgecnn.models.registry import register_model

if TYPE_CHECKING:
    import keras

STEM_FILTERS = 32
HEAD_FILTERS = 1280
WIDTH_DIVISOR = 8
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0
DROP_CONNECT_RATE = 0.2
NORMALISATION = "(x - 127) / 128 (inside the model)"

# keras.applications.efficientnet's initialisers, so both families train alike.
_CONV_INITIALIZER = {"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_out",
                                                                  "distribution": "truncated_normal"}}


@dataclass(frozen=True)
class Stage:
    """One stage of MBConv blocks, before width/depth scaling."""

    kernel_size: int
    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    strides: int


# The EfficientNet-B0 block table (the TF reference's "r1_k3_s11_e1_i32_o16" strings), squeeze-excite dropped.
STAGES: tuple[Stage, ...] = (
    Stage(kernel_size=3, repeats=1, filters_in=32, filters_out=16, expand_ratio=1, strides=1),
    Stage(kernel_size=3, repeats=2, filters_in=16, filters_out=24, expand_ratio=6, strides=2),
    Stage(kernel_size=5, repeats=2, filters_in=24, filters_out=40, expand_ratio=6, strides=2),
    Stage(kernel_size=3, repeats=3, filters_in=40, filters_out=80, expand_ratio=6, strides=2),
    Stage(kernel_size=5, repeats=3, filters_in=80, filters_out=112, expand_ratio=6, strides=1),
    Stage(kernel_size=5, repeats=4, filters_in=112, filters_out=192, expand_ratio=6, strides=2),
    Stage(kernel_size=3, repeats=1, filters_in=192, filters_out=320, expand_ratio=6, strides=1),
)


@dataclass(frozen=True)
class Variant:
    """Compound-scaling coefficients and the published training resolution and head dropout."""

    width: float
    depth: float
    resolution: int
    dropout: float


VARIANTS: dict[str, Variant] = {
    "efficientnet_lite0": Variant(width=1.0, depth=1.0, resolution=224, dropout=0.2),
    "efficientnet_lite1": Variant(width=1.0, depth=1.1, resolution=240, dropout=0.2),
    "efficientnet_lite2": Variant(width=1.1, depth=1.2, resolution=260, dropout=0.3),
    "efficientnet_lite3": Variant(width=1.2, depth=1.4, resolution=280, dropout=0.3),
    "efficientnet_lite4": Variant(width=1.4, depth=1.8, resolution=300, dropout=0.3),
}


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv block after scaling: its name prefix and its arguments."""

    name: str
    filters_in: int
    filters_out: int
    kernel_size: int
    strides: int
    expand_ratio: int


def round_filters(filters: int, width: float) -> int:
    """Scale a channel count by `width`, rounded to a multiple of 8 and never more than 10 % down."""
    scaled = filters * width
    rounded = max(WIDTH_DIVISOR, int(scaled + WIDTH_DIVISOR / 2) // WIDTH_DIVISOR * WIDTH_DIVISOR)
    if rounded < 0.9 * scaled:
        rounded += WIDTH_DIVISOR
    return int(rounded)


def block_specs(variant: Variant) -> list[BlockSpec]:
    """Every MBConv block of `variant` in build order, named like keras.applications (`block2b_`)."""
    specs = []
    for index, stage in enumerate(STAGES):
        fixed = index in (0, len(STAGES) - 1)  # Lite keeps the first and last stage at their B0 depth
        repeats = stage.repeats if fixed else int(math.ceil(variant.depth * stage.repeats))
        filters_in = STEM_FILTERS if index == 0 else round_filters(stage.filters_in, variant.width)
        filters_out = round_filters(stage.filters_out, variant.width)
        for repeat in range(repeats):
            specs.append(BlockSpec(
                name=f"block{index + 1}{chr(ord('a') + repeat)}_",
                filters_in=filters_in if repeat == 0 else filters_out,
                filters_out=filters_out,
                kernel_size=stage.kernel_size,
                strides=stage.strides if repeat == 0 else 1,
                expand_ratio=stage.expand_ratio,
            ))
    return specs


def _conv_bn_relu6(x, filters: int, kernel_size: int, strides: int, name: str, conv: str, bn: str, act: str):
    import keras

    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False,
        kernel_initializer=_CONV_INITIALIZER, name=f"{name}{conv}",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}{bn}")(x)
    return keras.layers.ReLU(6.0, name=f"{name}{act}")(x)


def mbconv_block(inputs: keras.KerasTensor, spec: BlockSpec, drop_rate: float) -> keras.KerasTensor:
    """Inverted residual: 1×1 expand → k×k depthwise → 1×1 linear project, identity shortcut when shapes match."""
    import keras

    name = spec.name
    x = inputs
    if spec.expand_ratio != 1:
        x = _conv_bn_relu6(
            x, spec.filters_in * spec.expand_ratio, 1, 1, name, "expand_conv", "expand_bn", "expand_activation"
        )
    x = keras.layers.DepthwiseConv2D(
        spec.kernel_size, strides=spec.strides, padding="same", use_bias=False,
        depthwise_initializer=_CONV_INITIALIZER, name=f"{name}dwconv",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}activation")(x)
    x = keras.layers.Conv2D(
        spec.filters_out, 1, padding="same", use_bias=False, kernel_initializer=_CONV_INITIALIZER,
        name=f"{name}project_conv",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}project_bn")(x)
    if spec.strides == 1 and spec.filters_in == spec.filters_out:
        if drop_rate > 0:
            # Stochastic depth: drops the whole residual branch per sample while training.
            x = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
        x = keras.layers.Add(name=f"{name}add")([x, inputs])
    return x


def efficientnet_lite_backbone(
    variant: Variant, image_size: int, drop_connect_rate: float = DROP_CONNECT_RATE
) -> keras.Model:
    """The EfficientNet-Lite feature extractor: 0..255 RGB pixels in, the 1280-channel ReLU6 map out."""
    import keras

    pixels = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="pixels")
    x = keras.layers.Rescaling(1 / PIXEL_STD, offset=-PIXEL_MEAN / PIXEL_STD, name="normalise")(pixels)
    x = _conv_bn_relu6(x, STEM_FILTERS, 3, 2, "", "stem_conv", "stem_bn", "stem_activation")
    specs = block_specs(variant)
    for index, spec in enumerate(specs):
        x = mbconv_block(x, spec, drop_connect_rate * index / len(specs))
    x = _conv_bn_relu6(x, HEAD_FILTERS, 1, 1, "", "top_conv", "top_bn", "top_activation")
    return keras.Model(pixels, x, name=BACKBONE_NAME)


def build_efficientnet_lite(
    name: str, num_classes: int, image_size: int, weights: str | None, dropout: float
) -> keras.Model:
    """An EfficientNet-Lite classifier: the `name` variant's backbone at `image_size` under a fresh head."""
    variant = VARIANTS[name]
    backbone_weights, weights_file = split_weights(weights, name)
    if backbone_weights == "imagenet":
        lite_weights.imagenet_weights_file(name)  # before building: fails fast, or converts once
    backbone = efficientnet_lite_backbone(variant, image_size)
    if backbone_weights == "imagenet":
        lite_weights.load_imagenet_backbone(name, backbone)
    return assemble(name, backbone, num_classes, dropout, weights_file)


def _registered(name: str):
    """`register_model` with the facts every Lite variant shares."""
    return register_model(
        name, default_image_size=VARIANTS[name].resolution, family="efficientnet_lite", normalisation=NORMALISATION,
        quantization_friendly=True, has_width=False,
    )


@_registered("efficientnet_lite0")
def efficientnet_lite0(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = VARIANTS["efficientnet_lite0"].dropout,
):
    """EfficientNet-Lite0 (ReLU6, no SE, 224 px): the int8-friendly EfficientNet."""
    return build_efficientnet_lite("efficientnet_lite0", num_classes, image_size, weights, dropout)


@_registered("efficientnet_lite1")
def efficientnet_lite1(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = VARIANTS["efficientnet_lite1"].dropout,
):
    """EfficientNet-Lite1 (ReLU6, no SE, 240 px)."""
    return build_efficientnet_lite("efficientnet_lite1", num_classes, image_size, weights, dropout)


@_registered("efficientnet_lite2")
def efficientnet_lite2(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = VARIANTS["efficientnet_lite2"].dropout,
):
    """EfficientNet-Lite2 (ReLU6, no SE, 260 px)."""
    return build_efficientnet_lite("efficientnet_lite2", num_classes, image_size, weights, dropout)


@_registered("efficientnet_lite3")
def efficientnet_lite3(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = VARIANTS["efficientnet_lite3"].dropout,
):
    """EfficientNet-Lite3 (ReLU6, no SE, 280 px)."""
    return build_efficientnet_lite("efficientnet_lite3", num_classes, image_size, weights, dropout)


@_registered("efficientnet_lite4")
def efficientnet_lite4(
    num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
    dropout: float = VARIANTS["efficientnet_lite4"].dropout,
):
    """EfficientNet-Lite4 (ReLU6, no SE, 300 px): the most accurate Lite."""
    return build_efficientnet_lite("efficientnet_lite4", num_classes, image_size, weights, dropout)

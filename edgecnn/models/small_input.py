"""Small-input ("CIFAR-style") variants of the edge models: `<parent>_cifar`, total stride 8 instead of 32.

The parents keep their ImageNet strides, which divide the input by 32: a 32 px image reaches global pooling as a
1×1 map. The usual adaptation for 32 px data (kuangliu/pytorch-cifar's MobileNetV2, the CIFAR ResNets) runs the
stem and the first downsampling stage at stride 1, so a 32 px image ends at 4×4. Only those two strides change:
same layers, layer names and weights as the parent (`weights: imagenet` loads the parent's), no residual added
where the parent has none; the MACs grow with the larger maps (figures in benchmarks/RESULTS.md).

keras.applications hard-code their strides, so a variant is its parent's backbone rebuilt from the layers'
configs with the first `UNSTRIDED` stride-2 convs at stride 1, and the parent's weights copied in by layer name.
One mechanism for every parent, EfficientNet-Lite included, so no architecture is written twice.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from edgecnn.models import efficientnet_lite, mobilenet  # noqa: F401  (the parents register first)
from edgecnn.models.applications import assemble, split_weights
from edgecnn.models.heads import BACKBONE_NAME
from edgecnn.models.registry import Builder, get, register_model

if TYPE_CHECKING:
    import keras

    from edgecnn.models.profile import ModelProfile

SUFFIX = "_cifar"
DEFAULT_IMAGE_SIZE = 32
UNSTRIDED = 2  # the stem and the first downsampling stage: 32 px → 4×4 before pooling
# Parents whose variant is registered: the edge models (int8-friendly, or the V3-Small everyone asks for).
PARENTS = (
    "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_small_minimalistic", "efficientnet_lite0",
)


def variant_name(parent: str) -> str:
    """The registry name of `parent`'s small-input variant."""
    return f"{parent}{SUFFIX}"


def unstride(backbone: keras.Model, count: int = UNSTRIDED) -> keras.Model:
    """A copy of a flat functional model whose first `count` stride-2 convs run at stride 1, same weights.

    Keras puts an asymmetric ZeroPadding2D before a 'valid' downsampling conv (`correct_pad`); at stride 1 that
    padding becomes symmetric (k // 2 each side), which is 'same' padding, so the map keeps its size.
    """
    import keras

    overrides = _stride_one_overrides(backbone, count)

    def clone(layer: Any) -> Any:
        config = {**layer.get_config(), **overrides.get(layer.name, {})}
        return layer.__class__.from_config(config)

    rebuilt = keras.models.clone_model(backbone, clone_function=clone)
    originals = {layer.name: layer for layer in backbone.layers}
    for layer in rebuilt.layers:
        if layer.weights:
            layer.set_weights(originals[layer.name].get_weights())
    return rebuilt


def final_feature_map(profile: ModelProfile) -> tuple[int, ...]:
    """Spatial size of the last batch norm's output: in every parent, the map that global pooling averages."""
    (*_, last) = (row for row in profile.layers if row.type == "BatchNormalization")
    return tuple(last.output_shape[:2])


def _stride_one_overrides(backbone: keras.Model, count: int) -> dict[str, dict[str, Any]]:
    """Layer name → config changes: strides 1 for the first `count` stride-2 convs, symmetric padding before them."""
    import keras

    from edgecnn.quant.graph import call_graph, producer

    downsampling = [
        operation for _, operation, _ in call_graph(backbone)
        if isinstance(operation, keras.layers.Conv2D | keras.layers.DepthwiseConv2D)
        and tuple(operation.strides) == (2, 2)
    ][:count]
    if len(downsampling) < count:
        raise ValueError(f"{backbone.name} has {len(downsampling)} stride-2 convs; {count} were to run at stride 1")
    overrides: dict[str, dict[str, Any]] = {}
    for conv in downsampling:
        overrides[conv.name] = {"strides": (1, 1)}
        if conv.padding == "same":
            continue
        pad = producer(conv)
        if not isinstance(pad, keras.layers.ZeroPadding2D):
            overrides[conv.name]["padding"] = "same"
            continue
        half = tuple(k // 2 for k in conv.kernel_size)
        overrides[pad.name] = {"padding": ((half[0], half[0]), (half[1], half[1]))}
    return overrides


def _builder(parent: str) -> Builder:
    """The variant's builder: the parent's own builder, then its backbone unstrided under a fresh head."""
    parent_build = get(parent).build
    parent_dropout = inspect.signature(parent_build).parameters["dropout"].default
    name = variant_name(parent)

    def build(
        num_classes: int, image_size: int, width: float = 1.0, weights: str | None = None,
        dropout: float = parent_dropout,
    ) -> keras.Model:
        backbone_weights, weights_file = split_weights(weights, name)
        source = parent_build(num_classes, image_size, width=width, weights=backbone_weights, dropout=dropout)
        backbone = unstride(source.get_layer(BACKBONE_NAME))
        return assemble(name, backbone, num_classes, dropout, weights_file)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (
        f"{parent} with the stem and first stage at stride 1 (total stride 8: 32 px ends at 4×4); same weights."
    )
    return build


def _register(parent: str) -> None:
    entry = get(parent)
    register_model(
        variant_name(parent), default_image_size=DEFAULT_IMAGE_SIZE,
        # Its own family: the parent's scaling rules (compound scaling of Lite) assume the parent's strides.
        family=f"{entry.family}{SUFFIX}", normalisation=entry.normalisation,
        quantization_friendly=entry.quantization_friendly, min_image_size=entry.min_image_size,
        has_width=entry.has_width,
    )(_builder(parent))


for _parent in PARENTS:
    _register(_parent)

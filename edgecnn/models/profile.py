"""Parameters, MACs, sizes and int8-friendliness of a Keras model, read from its graph (nested models included).

Counting convention (per image, from layer shapes; nothing is looked up):

``macs`` — multiply-accumulates of a weight with an activation, the unit of the papers' "MAdds"/"FLOPs":
  * conv (1-3D, ``groups`` honoured): ``out_elements × prod(kernel) × in_channels / groups``;
  * depthwise conv: ``out_elements × prod(kernel)``; separable conv: its depthwise plus its 1×1 part;
  * transposed conv: ``in_elements × prod(kernel) × filters``; dense: ``out_elements × in_features``;
  * everything else is 0: biases, batch norm and rescaling (folded into the neighbouring conv on export),
    activations, pooling and element-wise merges (residual ``Add``, squeeze-excite ``Multiply``).
  This reproduces MobileNetV1/V2/V3 and EfficientNet-B0 as published within 2 %.

``elementwise_ops`` — the per-element work ``macs`` leaves out, as an unfolded float graph runs it: batch norm
  and rescaling 2 per output element (scale, shift), activations 1 (also when fused into a conv/dense),
  merges ``inputs − 1``, pooling its window size, global pooling its input size.
  ``macs + elementwise_ops`` reproduces the EfficientNet-Lite README's "MAdds" (Lite0 407 M … Lite4 2.64 B)
  within 0.5 %: those figures count the element-wise work as well, the papers' figures do not.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

Shape = tuple[int | None, ...]
# rule(layer, input_shapes, output_shapes) -> count for one call on one image (shapes without the batch axis).
CountRule = Callable[[Any, list[Shape], list[Shape]], int]

BYTES_PER_MB = 1_000_000  # decimal megabytes, like keras.io's "Size (MB)" column
PAPER_NUM_CLASSES = 1000  # the published figures are for ImageNet-1k heads


@dataclass(frozen=True)
class LayerProfile:
    """One call of one layer: where it sits, what it outputs, what it holds and costs."""

    name: str  # path through nested models, e.g. "backbone/block_1_expand"
    type: str
    output_shape: Shape | tuple[Shape, ...]
    params: int
    trainable_params: int
    macs: int
    elementwise_ops: int


@dataclass(frozen=True)
class Int8Finding:
    """An int8-hostile construct and the layers where it occurs."""

    kind: str
    layers: tuple[str, ...]

    def summary(self) -> str:
        """'kind ×count', for tables."""
        return f"{self.kind} ×{len(self.layers)}"


@dataclass(frozen=True)
class ModelProfile:
    """Per-layer rows and totals for one model."""

    name: str
    input_shape: Shape
    layers: tuple[LayerProfile, ...]
    params: int
    trainable_params: int
    macs: int
    elementwise_ops: int
    depth: int  # layers that multiply by learned weights: conv, depthwise, separable, transposed conv, dense
    int8_hostile: tuple[Int8Finding, ...] = ()
    uncounted: tuple[str, ...] = ()  # layer types holding weights that no MAC rule covers

    @property
    def non_trainable_params(self) -> int:
        """Parameters training does not update (BN moving statistics, frozen layers)."""
        return self.params - self.trainable_params

    @property
    def float32_mb(self) -> float:
        """Weight size in float32: 4 bytes per parameter."""
        return self.params * 4 / BYTES_PER_MB

    @property
    def int8_mb(self) -> float:
        """Weight size after full-int8 quantisation, estimated as 1 byte per parameter.

        Folding removes the BN parameters while int32 biases and per-channel scales are added; for CNNs the two
        roughly cancel, so one byte per parameter is close to the weight bytes of an int8 .tflite.
        """
        return self.params / BYTES_PER_MB

    @property
    def int8_friendly(self) -> bool:
        """True when no int8-hostile activation or gating was found."""
        return not self.int8_hostile

    def int8_reason(self) -> str:
        """The hostile constructs found, e.g. 'hard-swish ×19, squeeze-excite gating ×9' ('' when friendly)."""
        return ", ".join(finding.summary() for finding in self.int8_hostile)

    def to_dict(self, include_layers: bool = True) -> dict[str, Any]:
        """JSON-ready dict, derived sizes and friendliness included."""
        data = asdict(self)
        if not include_layers:
            del data["layers"]
        data.update(
            non_trainable_params=self.non_trainable_params,
            float32_mb=round(self.float32_mb, 3),
            int8_mb=round(self.int8_mb, 3),
            int8_friendly=self.int8_friendly,
        )
        return data


def profile_model(model: keras.Model) -> ModelProfile:
    """Count parameters, MACs and element-wise ops of every layer call of a built Keras model."""
    from edgecnn.quant.graph import call_graph  # imports Keras, which this module leaves to its callers

    input_shape = _unbatched(model.inputs[0].shape)
    if None in input_shape:
        raise ValueError(f"cannot count MACs of {model.name!r}: input shape {input_shape} must be fully defined")
    rows: list[LayerProfile] = []
    findings: dict[str, list[str]] = {}
    uncounted: set[str] = set()
    seen_layers: set[int] = set()
    depth = 0
    for path, operation, node in call_graph(model):
        in_shapes = [_unbatched(t.shape) for t in node.input_tensors]
        out_shapes = [_unbatched(t.shape) for t in node.output_tensors]
        mac_rule = _lookup(_mac_rules(), operation)
        elementwise_rule = _lookup(_elementwise_rules(), operation)
        params, trainable = _weights_once(operation, seen_layers)
        if mac_rule is None and _count(getattr(operation, "weights", [])) > 0:
            uncounted.add(type(operation).__name__)
        if isinstance(operation, _weight_layer_types()):
            depth += 1
        rows.append(LayerProfile(
            name=path,
            type=type(operation).__name__,
            output_shape=out_shapes[0] if len(out_shapes) == 1 else tuple(out_shapes),
            params=params,
            trainable_params=trainable,
            macs=mac_rule(operation, in_shapes, out_shapes) if mac_rule else 0,
            elementwise_ops=elementwise_rule(operation, in_shapes, out_shapes) if elementwise_rule else 0,
        ))
        for kind in _int8_hazards(operation, in_shapes):
            findings.setdefault(kind, []).append(path)
    return ModelProfile(
        name=model.name,
        input_shape=input_shape,
        layers=tuple(rows),
        params=sum(r.params for r in rows),
        trainable_params=sum(r.trainable_params for r in rows),
        macs=sum(r.macs for r in rows),
        elementwise_ops=sum(r.elementwise_ops for r in rows),
        depth=depth,
        int8_hostile=tuple(Int8Finding(kind, tuple(paths)) for kind, paths in findings.items()),
        uncounted=tuple(sorted(uncounted)),
    )


def profile_built(factory: Callable[[], keras.Model]) -> ModelProfile:
    """Build a model with `factory`, profile it, then free it (Keras session cleared: builds add up otherwise)."""
    import keras

    try:
        return profile_model(factory())
    finally:
        keras.backend.clear_session()


def profile_registered(
    name: str, num_classes: int = PAPER_NUM_CLASSES, image_size: int | None = None, width: float = 1.0
) -> ModelProfile:
    """Profile a registry model built without weights (default resolution unless `image_size` is given)."""
    from edgecnn.models.registry import create

    return profile_built(
        lambda: create(name, num_classes=num_classes, image_size=image_size, width=width, weights=None)
    )


# --- helpers ---------------------------------------------------------------------------------------------------


def _unbatched(shape: Shape) -> Shape:
    return tuple(shape[1:])


def _count(weights: list[Any]) -> int:
    return sum(math.prod(w.shape) for w in weights)


def _weights_once(operation: Any, seen: set[int]) -> tuple[int, int]:
    """(params, trainable) the first time a layer is met; (0, 0) for later calls of a shared layer."""
    if id(operation) in seen:
        return 0, 0
    seen.add(id(operation))
    return _count(getattr(operation, "weights", [])), _count(getattr(operation, "trainable_weights", []))


def _lookup(table: dict[type, Any], operation: Any) -> Any:
    """The table entry for the operation's class or its nearest listed base class."""
    for cls in type(operation).__mro__:
        if cls in table:
            return table[cls]
    return None


def _channels(layer: Any, shape: Shape) -> int:
    return int(shape[0] if getattr(layer, "data_format", "channels_last") == "channels_first" else shape[-1])


# --- MAC rules -------------------------------------------------------------------------------------------------


def _conv_macs(layer: Any, ins: list[Shape], outs: list[Shape]) -> int:
    return math.prod(outs[0]) * math.prod(layer.kernel_size) * _channels(layer, ins[0]) // layer.groups


def _depthwise_macs(layer: Any, ins: list[Shape], outs: list[Shape]) -> int:
    return math.prod(outs[0]) * math.prod(layer.kernel_size)


def _separable_macs(layer: Any, ins: list[Shape], outs: list[Shape]) -> int:
    positions = math.prod(outs[0]) // _channels(layer, outs[0])
    depthwise_channels = _channels(layer, ins[0]) * layer.depth_multiplier
    return positions * depthwise_channels * (math.prod(layer.kernel_size) + layer.filters)


def _conv_transpose_macs(layer: Any, ins: list[Shape], outs: list[Shape]) -> int:
    return math.prod(ins[0]) * math.prod(layer.kernel_size) * layer.filters


def _dense_macs(layer: Any, ins: list[Shape], outs: list[Shape]) -> int:
    return math.prod(outs[0]) * int(ins[0][-1])


def _no_macs(layer: Any, ins: list[Shape], outs: list[Shape]) -> int:
    return 0


@functools.cache
def _mac_rules() -> dict[type, CountRule]:
    """Layer class → MAC rule (subclasses inherit it). Unlisted classes cost 0 MACs."""
    import keras

    layers = keras.layers
    rules: dict[type, CountRule] = {layers.Dense: _dense_macs}
    rules.update(dict.fromkeys((layers.Conv1D, layers.Conv2D, layers.Conv3D), _conv_macs))
    rules.update(dict.fromkeys((layers.DepthwiseConv1D, layers.DepthwiseConv2D), _depthwise_macs))
    rules.update(dict.fromkeys((layers.SeparableConv1D, layers.SeparableConv2D), _separable_macs))
    rules.update(dict.fromkeys(
        (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose), _conv_transpose_macs
    ))
    # Folded into the neighbouring conv on export; listed so their weights are not reported as uncounted.
    rules.update(dict.fromkeys((layers.BatchNormalization, layers.Normalization, layers.Rescaling), _no_macs))
    return rules


@functools.cache
def _weight_layer_types() -> tuple[type, ...]:
    """Layers `depth` counts: those with a MAC rule that multiplies by learned weights."""
    return tuple(cls for cls, rule in _mac_rules().items() if rule is not _no_macs)


# --- element-wise rules ----------------------------------------------------------------------------------------


def _per_output(ops_per_element: int) -> CountRule:
    def rule(layer: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return ops_per_element * math.prod(outs[0])

    return rule


def _merge_ops(layer: Any, ins: list[Shape], outs: list[Shape]) -> int:
    return math.prod(outs[0]) * (len(ins) - 1)


def _pool_ops(layer: Any, ins: list[Shape], outs: list[Shape]) -> int:
    return math.prod(outs[0]) * math.prod(layer.pool_size)


def _global_pool_ops(layer: Any, ins: list[Shape], outs: list[Shape]) -> int:
    return math.prod(ins[0])


def _fused_activation_ops(layer: Any, ins: list[Shape], outs: list[Shape]) -> int:
    import keras

    return 0 if layer.activation is keras.activations.linear else math.prod(outs[0])


@functools.cache
def _elementwise_rules() -> dict[type, CountRule]:
    """Layer or op class → element-wise op rule (subclasses inherit it). Unlisted classes cost 0."""
    import keras

    from edgecnn.quant.graph import op_class  # `keras.ops.relu6(x)` or `x + 3` in a functional graph

    layers = keras.layers
    rules: dict[type, CountRule] = dict.fromkeys(_weight_layer_types(), _fused_activation_ops)
    rules.update(dict.fromkeys((layers.BatchNormalization, layers.Normalization, layers.Rescaling), _per_output(2)))
    rules.update(dict.fromkeys(
        (layers.Activation, layers.ReLU, layers.LeakyReLU, layers.PReLU, layers.ELU, layers.Softmax,
         *map(op_class, ("Relu", "Relu6", "Sigmoid", "Silu", "HardSilu", "HardSigmoid", "Gelu",
                         "Add", "Subtract", "Multiply", "Divide"))),
        _per_output(1),
    ))
    rules.update(dict.fromkeys(
        (layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum, layers.Minimum), _merge_ops
    ))
    rules.update(dict.fromkeys(
        (layers.MaxPooling1D, layers.MaxPooling2D, layers.MaxPooling3D,
         layers.AveragePooling1D, layers.AveragePooling2D, layers.AveragePooling3D),
        _pool_ops,
    ))
    rules.update(dict.fromkeys(
        (layers.GlobalAveragePooling1D, layers.GlobalAveragePooling2D, layers.GlobalAveragePooling3D,
         layers.GlobalMaxPooling1D, layers.GlobalMaxPooling2D, layers.GlobalMaxPooling3D),
        _global_pool_ops,
    ))
    return rules


# --- int8 friendliness -----------------------------------------------------------------------------------------


@functools.cache
def _hostile_activations() -> dict[Any, str]:
    """Activation function or op class → finding kind, for activations that break full-int8 PTQ."""
    import keras

    from edgecnn.quant.graph import op_class

    return {
        keras.activations.silu: "swish/silu",
        keras.activations.hard_silu: "hard-swish",
        keras.activations.hard_sigmoid: "hard-sigmoid",
        keras.activations.gelu: "gelu",
        op_class("Silu"): "swish/silu",
        op_class("HardSilu"): "hard-swish",
        op_class("HardSigmoid"): "hard-sigmoid",
        op_class("Gelu"): "gelu",
    }


@functools.cache
def _multiply_types() -> tuple[type, ...]:
    import keras

    from edgecnn.quant.graph import op_class

    return (keras.layers.Multiply, op_class("Multiply"))


def _int8_hazards(operation: Any, ins: list[Shape]) -> list[str]:
    """Finding kinds for one layer call: hostile activations (layer, fused or op) and channel gating."""
    hostile = _hostile_activations()
    kinds = [hostile[key] for key in (getattr(operation, "activation", None), type(operation)) if key in hostile]
    if isinstance(operation, _multiply_types()) and _is_channel_gate(ins):
        # Squeeze-excite: a sigmoid/hard-sigmoid gate in [0, 1] rescales every channel; int8 PTQ of the
        # gate and of the product is what collapses MobileNetV3 and EfficientNet-B0 accuracy.
        kinds.append("squeeze-excite gating")
    return kinds


def _is_channel_gate(shapes: list[Shape]) -> bool:
    """A feature map multiplied by a tensor with one value per channel: x * gate(GAP(x))."""
    if len(shapes) != 2 or any(len(s) < 2 for s in shapes):
        return False
    positions = [math.prod(d or 1 for d in s[:-1]) for s in shapes]
    return min(positions) == 1 and max(positions) > 1

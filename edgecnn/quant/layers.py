"""Fake-quantising Keras layers: int8 kernels per output channel and 8-bit activations over calibrated ranges.

Each class is registered as `edgecnn>ClassName`, the name saved `model_qat.keras` files refer to: renaming a class
or its package breaks loading them. Gradients pass straight through the rounding (activations:
`keras.quantizers.fake_quant_with_min_max_vars`; kernels: `fake_quant_weights`), and only `keras.ops` /
`keras.quantizers` are used, so the layers train on any Keras backend.

Keras saves a Conv2D's or Dense's `kernel` property, so a saved QAT model holds the fake-quantised kernels (the
float weights snapped to their int8 grid): it reloads to the same outputs and converts to the same int8 model.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="edgecnn")
class ActivationQuantizer(keras.layers.Layer):
    """Fake-quantises activations to 8 bits over a calibrated [min, max] range (straight-through gradients).

    `joins` names the quantiser of the ADD that is this tensor's only consumer: the converter gives such a tensor
    the union of its own range and the ADD's (TF 2.21, measured; not when a ReLU is fused into the ADD). It does the
    same for a constant multiple whose only consumer is a MUL (see `rules.quantisation_points`).
    """

    def __init__(self, fixed_range: tuple[float, float] | None = None, joins: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.fixed_range = tuple(fixed_range) if fixed_range is not None else None
        self.joins = joins

    def build(self, input_shape) -> None:
        add_range(self, *(self.fixed_range or (0.0, 0.0)))

    def call(self, inputs):
        return fake_quant(self, inputs)

    def compute_output_shape(self, input_shape):
        # Declared rather than inferred by tracing `call`: Keras marks the symbolic output of `x * (1 / 6)` sparse
        # (a Python scalar has no `sparse` attribute, which Multiply reads as True), and a sparse placeholder
        # cannot be traced through FakeQuantWithMinMaxVars. The real tensor is dense, and so is this output.
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "fixed_range": self.fixed_range, "joins": self.joins}


@keras.saving.register_keras_serializable(package="edgecnn")
class QATRescaling(keras.layers.Rescaling):
    """Rescaling with an offset as TFLite runs it before a 'same'-padded conv: MUL, then ADD, each requantised.

    The converter gives the MUL's output the union of the MUL's and the ADD's calibrated ranges (TF 2.21, measured
    on several scale/offset/pixel-range combinations), so the scaled pixels are quantised over that union here;
    the ADD's output gets the usual `ActivationQuantizer` after this layer.
    """

    def build(self, input_shape) -> None:
        add_range(self, 0.0, 0.0)
        self.built = True

    def call(self, inputs):
        scaled = ops.cast(inputs, self.compute_dtype) * ops.cast(self.scale, self.compute_dtype)
        return fake_quant(self, scaled) + ops.cast(self.offset, self.compute_dtype)


@keras.saving.register_keras_serializable(package="edgecnn")
class QATHardSwish(keras.layers.Layer):
    """Hard-swish as edgecnn's int8 export lowers it (`edgecnn.export.lowering`): (x / 6) · relu6(x + 3), that is a
    MUL and an ADD with a fused RELU6, each requantised, and their MUL, requantised by the `ActivationQuantizer`
    after this layer.

    `range_*` is the grid of x / 6, `gate_range_*` that of relu6(x + 3). The converter gives x / 6 the union of its
    own range and the product's, as it does for a tensor feeding an ADD (TF 2.21, measured: on MobileNetV3-Small
    the product's range alone whenever x / 6 lies inside it, the union where x / 6 reaches below the product's
    minimum of −3/8); `calibrate` does the same.
    """

    def __init__(self, activation: str = "hard_silu", **kwargs):
        super().__init__(**kwargs)
        self.activation = activation  # the Activation config it stands for (`strip_qat` rebuilds that layer from it)

    def build(self, input_shape) -> None:
        add_range(self, 0.0, 0.0)
        add_range(self, 0.0, 0.0, prefix="gate_range")

    def call(self, inputs):
        scaled = fake_quant(self, inputs * (1.0 / 6.0))
        return scaled * fake_quant(self, ops.relu6(inputs + 3.0), prefix="gate_range")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation}


def add_range(layer: keras.layers.Layer, low: float, high: float, prefix: str = "range") -> None:
    """Give `layer` the non-trainable [<prefix>_min, <prefix>_max] of an 8-bit activation quantiser."""
    for name, value in ((f"{prefix}_min", low), (f"{prefix}_max", high)):
        setattr(layer, name, layer.add_weight(name=name, shape=(), initializer=keras.initializers.Constant(value),
                                              trainable=False))


def fake_quant(layer: keras.layers.Layer, tensor, prefix: str = "range"):
    """`tensor` rounded to the 8-bit grid of `layer`'s [<prefix>_min, <prefix>_max]."""
    low, high = getattr(layer, f"{prefix}_min"), getattr(layer, f"{prefix}_max")
    return keras.quantizers.fake_quant_with_min_max_vars(tensor, low, high, num_bits=8)


def fake_quant_weights(kernel):
    """Symmetric narrow-range int8 per output channel (the last Keras axis): scale = max|w| / 127, w / scale
    rounded half away from zero, as the converter quantises weights; straight-through gradients.

    Not `fake_quant_with_min_max_vars`: it rounds (w − min) / scale, 127 steps off zero, whose float error moves a
    weight within about 1e-5 of a step's midpoint to the other side of it, and QAT parks weights at the midpoints
    (they oscillate across them). One such weight on a wide input channel shifts an output by tens of steps.
    """
    bound = ops.maximum(ops.max(ops.abs(kernel), axis=tuple(range(len(kernel.shape) - 1))), 1e-8)
    scale = bound / 127.0
    steps = kernel / scale
    quantised = ops.sign(steps) * ops.floor(ops.abs(steps) + 0.5) * scale
    return kernel + ops.stop_gradient(quantised - kernel)


@keras.saving.register_keras_serializable(package="edgecnn")
class QATConv2D(keras.layers.Conv2D):
    """Conv2D whose kernel is fake-quantised per output channel, as TFLite's int8 CONV_2D stores it."""

    @property
    def kernel(self):
        return fake_quant_weights(super().kernel)


@keras.saving.register_keras_serializable(package="edgecnn")
class QATDense(keras.layers.Dense):
    """Dense whose kernel is fake-quantised per output unit, as TFLite's int8 FULLY_CONNECTED stores it."""

    @property
    def kernel(self):
        return fake_quant_weights(super().kernel)


@keras.saving.register_keras_serializable(package="edgecnn")
class QATDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D whose (kh, kw, C, M) kernel is fake-quantised per output channel c·M + m, as TFLite's int8
    DEPTHWISE_CONV_2D stores it (per channel on axis 3 of its (1, kh, kw, C·M) layout)."""

    @property
    def kernel(self):
        kernel = self._kernel
        flat = ops.reshape(kernel, (*kernel.shape[:2], -1))
        return ops.reshape(fake_quant_weights(flat), kernel.shape)

    @kernel.setter
    def kernel(self, value) -> None:  # DepthwiseConv2D.build assigns self.kernel
        self._kernel = value


QAT_LAYERS: dict[type, type] = {
    keras.layers.Conv2D: QATConv2D, keras.layers.DepthwiseConv2D: QATDepthwiseConv2D, keras.layers.Dense: QATDense,
    keras.layers.Rescaling: QATRescaling,  # only with an offset: see `emulation.qat_class`
    keras.layers.Activation: QATHardSwish,  # only hard-swish: see `emulation.qat_class`
}
PLAIN_LAYERS: dict[type, type] = {qat: plain for plain, qat in QAT_LAYERS.items()}

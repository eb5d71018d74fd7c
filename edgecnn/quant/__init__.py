"""Keras-only quantisation core: graph walking, fake-quant layers, the TFLite converter's rules, QAT emulation.

Layer 2 of edgecnn: imports Keras, never TensorFlow or edgecnn's upper layers; `graph` is the one module in
edgecnn that reads Keras private attributes.
"""

from edgecnn.quant.emulation import calibrate, prepare_qat, strip_qat
from edgecnn.quant.graph import leaf_layers

__all__ = ["calibrate", "leaf_layers", "prepare_qat", "strip_qat"]

"""Rewrites applied to a Keras model for the length of one conversion, so each op lands on an accelerated kernel.

Why this exists: XNNPACK, LiteRT's CPU engine, has no int8 HARD_SWISH kernel. The TFLite converter fuses Keras'
hard-swish into a single HARD_SWISH op, which then runs on LiteRT's reference kernel and cuts the int8 graph into
one XNNPACK partition per activation, so int8 MobileNetV3 runs slower than float32. Written as
`(x / 6) · relu6(x + 3)` — an operand order the converter's hard-swish fusion patterns do not match
(`x · (relu6(x + 3) / 6)` is fused back) — each activation becomes ADD (with a fused RELU6) and two MULs, all
three delegated: one partition. The measured speed of both forms is benchmarks/hard_swish.py's table in
benchmarks/RESULTS.md ("Int8 hard-swish under LiteRT"); the accuracy cost is the export's parity check.

int16x8 gets the same rewrite for another reason: the converter has no 16x8 HARD_SWISH ("Quantization to 16x8-bit
not yet supported for op: 'HARD_SWISH'"), while ADD, RELU6 and MUL have 16x8 kernels.
Float exports keep the fused op: XNNPACK runs float HARD_SWISH natively, and one op beats three.
The rewrite is exact in real arithmetic; in int8 it adds two requantisations per activation, which the export's
parity check measures like any other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def _hard_swish_for_xnnpack(x):
    from keras import ops

    return (x * (1.0 / 6.0)) * ops.relu6(x + 3.0)


def _is_hard_swish(activation: Callable) -> bool:
    # keras.activations.hard_swish is an alias of hard_silu; match by name so either spelling is caught.
    return getattr(activation, "__name__", "") in {"hard_silu", "hard_swish"}


@dataclass(frozen=True)
class Rewrite:
    """Swap a layer's activation function for an equivalent one the target runtime accelerates at `precisions`."""

    name: str
    precisions: frozenset[str]
    matches: Callable[[Callable], bool]
    replacement: Callable
    reason: str


REWRITES: tuple[Rewrite, ...] = (
    Rewrite(
        name="hard_swish",
        precisions=frozenset({"int8", "int16x8"}),
        matches=_is_hard_swish,
        replacement=_hard_swish_for_xnnpack,
        reason="XNNPACK has no int8 HARD_SWISH (ADD+RELU6 and MUL are delegated); the converter has no 16x8 one",
    ),
)


@contextmanager
def lowered(model, precision: str) -> Iterator[Counter]:
    """Within the block, `model`'s activations are rewritten for `precision`; yields rewrite name → layer count.

    The original functions are restored on exit, so the caller's model is unchanged afterwards.
    """
    from edgecnn.quant.graph import leaf_layers  # imports Keras: not before the caller has chosen its backend

    swapped: list[tuple[object, Callable]] = []
    counts: Counter = Counter()
    try:
        for layer in leaf_layers(model):
            activation = getattr(layer, "activation", None)
            if activation is None:
                continue
            for rewrite in REWRITES:
                if precision in rewrite.precisions and rewrite.matches(activation):
                    swapped.append((layer, activation))
                    layer.activation = rewrite.replacement
                    counts[rewrite.name] += 1
                    break
        yield counts
    finally:
        for layer, activation in swapped:
            layer.activation = activation

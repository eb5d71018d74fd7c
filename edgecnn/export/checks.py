"""Checks every export must pass against the trained Keras model: parity of probabilities and accuracy."""

from __future__ import annotations

import numpy as np

from edgecnn.data import ImageSet
from edgecnn.runtime import Predictor

# Float precisions must reproduce Keras' probabilities: the largest allowed |Δprob| and the least top-1 agreement.
PARITY_LIMITS: dict[str, dict[str, float]] = {
    "float32": {"max_abs_diff": 1e-4, "min_agreement": 0.999},
    "float16": {"max_abs_diff": 1e-2, "min_agreement": 0.99},
}
# Quantised precisions change predictions by design; what users care about is accuracy, so they pass on an accuracy
# budget: validation top-1 at most this many points below Keras (the recipe's export.max_drop or --max-drop).
BUDGETED_PRECISIONS: tuple[str, ...] = ("dynamic", "int8", "int16x8")
DEFAULT_MAX_DROP = 1.0
# Below this top-1 agreement with Keras a quantised bundle passes with a warning (a reported figure, not a verdict).
AGREEMENT_WARNING = 0.99

THRESHOLDS: dict[str, dict[str, float]] = {
    **PARITY_LIMITS,
    **{precision: {"max_drop_points": DEFAULT_MAX_DROP} for precision in BUDGETED_PRECISIONS},
}


def limits_for(precision: str, max_drop: float | None = None) -> dict[str, float]:
    """The pass/fail limits of `precision`: |Δp| and agreement for floats, the top-1 budget for quantised ones."""
    if precision in PARITY_LIMITS:
        return dict(PARITY_LIMITS[precision])
    return {"max_drop_points": DEFAULT_MAX_DROP if max_drop is None else float(max_drop)}


def parity_checks(
    keras_probs: np.ndarray, export_probs: np.ndarray, labels: np.ndarray, precision: str,
    max_drop: float | None = None,
) -> dict:
    """Compare exported probabilities with Keras' on the same images; `passed` applies the precision's limits.

    float32/float16 pass on |Δp| and agreement; dynamic/int8/int16x8 on the top-1 drop within `max_drop` points
    (default DEFAULT_MAX_DROP), with agreement and |Δp| reported and a warning when agreement is below 99 %.
    """
    limits = limits_for(precision, max_drop)
    keras_top1 = keras_probs.argmax(axis=1)
    export_top1 = export_probs.argmax(axis=1)
    agreement = float(np.mean(keras_top1 == export_top1))
    max_abs_diff = float(np.max(np.abs(keras_probs - export_probs)))
    keras_accuracy = float(np.mean(keras_top1 == labels))
    export_accuracy = float(np.mean(export_top1 == labels))
    drop = round(100 * (keras_accuracy - export_accuracy), 3)
    if "max_drop_points" in limits:
        passed = drop <= limits["max_drop_points"]
        warnings = [] if agreement >= AGREEMENT_WARNING else [
            f"top-1 agreement with Keras {agreement:.1%} < {AGREEMENT_WARNING:.0%} (passes on accuracy: drop "
            f"{drop:+.2f} pt, budget {limits['max_drop_points']} pt)"
        ]
    else:
        passed = max_abs_diff <= limits["max_abs_diff"] and agreement >= limits["min_agreement"]
        warnings = []
    return {
        "images": int(len(labels)),
        "top1_agreement": agreement,
        "max_abs_prob_diff": max_abs_diff,
        "keras_top1": keras_accuracy,
        "export_top1": export_accuracy,
        "top1_drop_points": drop,
        "limits": limits,
        "rule": "accuracy budget" if "max_drop_points" in limits else "probability parity",
        "warnings": warnings,
        "passed": bool(passed),
    }


def keras_probabilities(model, images: ImageSet | np.ndarray) -> np.ndarray:
    """The trained model's probabilities, batched, on uint8 images."""
    pixels = images.images if isinstance(images, ImageSet) else images
    return np.asarray(model.predict(pixels.astype(np.float32), batch_size=128, verbose=0))


def runtime_probabilities(predictor: Predictor, images: ImageSet) -> np.ndarray:
    """The exported model's probabilities through the device runtime (same path as on the device)."""
    return predictor.predict(images.images)

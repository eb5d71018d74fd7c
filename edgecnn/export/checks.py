"""Checks every export must pass against the trained Keras model: parity of probabilities and accuracy."""

from __future__ import annotations

import numpy as np

from edgecnn.data import ImageSet
from edgecnn.runtime import Predictor

# Per precision: the largest allowed |Δprob| against Keras, and the least top-1 agreement.
THRESHOLDS: dict[str, dict[str, float]] = {
    "float32": {"max_abs_diff": 1e-4, "min_agreement": 0.999},
    "float16": {"max_abs_diff": 1e-2, "min_agreement": 0.99},
    "dynamic": {"max_abs_diff": 1.0, "min_agreement": 0.99},
    "int8": {"max_abs_diff": 1.0, "min_agreement": 0.99},
    "int16x8": {"max_abs_diff": 1.0, "min_agreement": 0.99},
}


def parity_checks(keras_probs: np.ndarray, export_probs: np.ndarray, labels: np.ndarray, precision: str) -> dict:
    """Compare exported probabilities with Keras' on the same images; `passed` applies the precision's limits."""
    limits = THRESHOLDS[precision]
    keras_top1 = keras_probs.argmax(axis=1)
    export_top1 = export_probs.argmax(axis=1)
    agreement = float(np.mean(keras_top1 == export_top1))
    max_abs_diff = float(np.max(np.abs(keras_probs - export_probs)))
    keras_accuracy = float(np.mean(keras_top1 == labels))
    export_accuracy = float(np.mean(export_top1 == labels))
    return {
        "images": int(len(labels)),
        "top1_agreement": agreement,
        "max_abs_prob_diff": max_abs_diff,
        "keras_top1": keras_accuracy,
        "export_top1": export_accuracy,
        "top1_drop_points": round(100 * (keras_accuracy - export_accuracy), 3),
        "limits": limits,
        "passed": bool(max_abs_diff <= limits["max_abs_diff"] and agreement >= limits["min_agreement"]),
    }


def keras_probabilities(model, images: ImageSet | np.ndarray) -> np.ndarray:
    """The trained model's probabilities, batched, on uint8 images."""
    pixels = images.images if isinstance(images, ImageSet) else images
    return np.asarray(model.predict(pixels.astype(np.float32), batch_size=128, verbose=0))


def runtime_probabilities(predictor: Predictor, images: ImageSet) -> np.ndarray:
    """The exported model's probabilities through the device runtime (same path as on the device)."""
    return predictor.predict(images.images)

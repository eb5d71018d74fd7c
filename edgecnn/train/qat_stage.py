"""The QAT stage of a run: fine-tune a fake-quantised copy of the trained model and save it as model_qat.keras."""

from __future__ import annotations

import sys
import time

import keras
import numpy as np

from edgecnn.config import Recipe
from edgecnn.data import DataSplits, FileSet, ImageSet
from edgecnn.metrics import classification_report
from edgecnn.run_dir import RunDir
from edgecnn.train.batches import ImageBatches
from edgecnn.train.optim import loss, optimizer
from edgecnn.train.predict import predict_part
from edgecnn.train.saving import save_model


def top1(model: keras.Model, split: ImageSet | FileSet) -> float | None:
    """Top-1 of a Keras model on a split, streamed when the split is (None for an empty split)."""
    if not len(split):
        return None
    probs, positions = predict_part(model, split)
    return classification_report(split.labels[positions], probs, split.class_names).top1


def quantisation_aware_fine_tune(
    recipe: Recipe, run: RunDir, model: keras.Model, data: DataSplits, calibration: np.ndarray,
    train_batches: ImageBatches, val_batches: ImageBatches,
) -> dict:
    """Fine-tune a fake-quantised copy of `model`, save it as model_qat.keras, return its metrics.

    Ranges are calibrated on the sample int8 export calibrates on, so the QAT model trains against the ranges the
    converter will measure.
    """
    from edgecnn.train import qat

    total_steps = len(train_batches) * recipe.qat.epochs
    print(f"quantisation-aware fine-tuning: {recipe.qat.epochs} epochs at learning rate {recipe.qat.learning_rate}")
    started = time.perf_counter()
    qat_model = qat.fine_tune(
        model, calibration, train_batches, recipe.qat.epochs,
        optimizer(recipe, recipe.qat.learning_rate, total_steps), loss(recipe),
        validation_data=val_batches if len(data.val) else None, verbose=1 if sys.stdout.isatty() else 2,
    )
    seconds = time.perf_counter() - started
    save_model(qat_model, run.model_qat)
    report = {
        "model_file": run.model_qat.name,
        "epochs": recipe.qat.epochs,
        "learning_rate": recipe.qat.learning_rate,
        "calibration_images": int(len(calibration)),
        "train_seconds": round(seconds, 1),
        "val_top1": top1(qat_model, data.val),  # fake-quantised: what int8 TFLite export of it should score
        "float_val_top1": top1(model, data.val),
        "test_top1": top1(qat_model, data.test),
    }
    if report["val_top1"] is not None:
        print(f"QAT val top-1 {report['val_top1']:.2%} (float {report['float_val_top1']:.2%})")
    print(f"QAT model saved in {run.model_qat}")
    return report

"""Quantisation-aware fine-tuning for Keras 3 functional classifiers (TF-MOT's `quantize_model` rejects Keras 3).

The fake-quantised model and its calibration live in `edgecnn.quant` (see `edgecnn.quant.emulation`); this module
is the training loop around them. Ranges stay constant inside each epoch and `RecalibrateRanges` refreshes them
between epochs, the role of TF-MOT's moving-average observers. Training works on any Keras backend; converting
the result to int8 TFLite is `edgecnn.export.tflite.qat_to_tflite` (needs TensorFlow).
"""

from __future__ import annotations

import keras
import numpy as np

from edgecnn.quant import calibrate, prepare_qat


class RecalibrateRanges(keras.callbacks.Callback):
    """Recalibrates activation ranges at each epoch start, so they follow the weights as fine-tuning moves them."""

    def __init__(self, calibration_images: np.ndarray):
        super().__init__()
        self.calibration_images = calibration_images

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        calibrate(self.model, self.calibration_images)


def fine_tune(
    model: keras.Model,
    calibration_images: np.ndarray,
    train_data,
    epochs: int,
    optimizer: keras.optimizers.Optimizer,
    loss: keras.losses.Loss | str,
    validation_data=None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = 0,
    **fit_kwargs,
) -> keras.Model:
    """Prepare a QAT copy of `model`, fine-tune it (ranges recalibrated every epoch) and calibrate it a last time.

    `train_data` and `fit_kwargs` go to `Model.fit` as they are (arrays with `y=`/`batch_size=`, or a PyDataset).
    """
    qat_model = prepare_qat(model, calibration_images)
    qat_model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    qat_model.fit(
        train_data, validation_data=validation_data, epochs=epochs, verbose=verbose,
        callbacks=[RecalibrateRanges(calibration_images), *(callbacks or [])], **fit_kwargs,
    )
    calibrate(qat_model, calibration_images)  # the ranges of the final weights, as the converter will measure them
    return qat_model

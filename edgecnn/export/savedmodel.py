"""Keras model → TensorFlow SavedModel with one static batch-1 signature, the input every converter gets."""

from __future__ import annotations

from pathlib import Path

from edgecnn.export.backend import require_tensorflow_backend

SIGNATURE = "serving_default"


def write_saved_model(model, directory: str | Path) -> Path:
    """Write `model` as a SavedModel whose only signature takes float32 (1, H, W, 3) pixels in 0..255.

    A static batch of 1 keeps converters from emitting dynamic-shape ops that edge runtimes handle badly.
    """
    require_tensorflow_backend()
    import keras
    import tensorflow as tf

    height, width, channels = model.input_shape[1:]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SIGNATURE,
        lambda image: model(image, training=False),
        input_signature=[tf.TensorSpec((1, height, width, channels), tf.float32, name="image")],
    )
    directory = Path(directory)
    archive.write_out(str(directory), verbose=False)
    return directory

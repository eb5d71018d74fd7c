"""Export always runs Keras on TensorFlow: make sure that is the backend before Keras is imported."""

from __future__ import annotations

import os
import sys

from edgecnn.errors import ExportError


def require_tensorflow_backend() -> None:
    """Select the TensorFlow backend, or fail clearly if Keras was already imported with another one."""
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != "tensorflow":
            raise ExportError(
                f"export needs the Keras TensorFlow backend but Keras was loaded with "
                f"{keras.backend.backend()!r}; run export in its own process with KERAS_BACKEND=tensorflow "
                "(a model trained on JAX or PyTorch loads fine there)"
            )
        return
    os.environ["KERAS_BACKEND"] = "tensorflow"

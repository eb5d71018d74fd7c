"""Device runtime: load an exported bundle, classify or embed uint8 RGB images. Never imports TensorFlow or Keras."""

from edgecnn.runtime.bundle import BundleError, Manifest, read_manifest
from edgecnn.runtime.embedder import Embedder
from edgecnn.runtime.predictor import Predictor, load
from edgecnn.runtime.preprocess import ImageDecodeError, fit_batch, fit_image, read_image

__all__ = [
    "BundleError",
    "Embedder",
    "ImageDecodeError",
    "Manifest",
    "Predictor",
    "fit_batch",
    "fit_image",
    "load",
    "read_image",
    "read_manifest",
]

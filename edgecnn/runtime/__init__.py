"""Device runtime: load an exported bundle and classify uint8 RGB images. Never imports TensorFlow or Keras."""

from edgecnn.runtime.bundle import BundleError, Manifest, read_manifest
from edgecnn.runtime.predictor import Predictor, load
from edgecnn.runtime.preprocess import ImageDecodeError, fit_batch, fit_image, read_image

__all__ = [
    "BundleError",
    "ImageDecodeError",
    "Manifest",
    "Predictor",
    "fit_batch",
    "fit_image",
    "load",
    "read_image",
    "read_manifest",
]

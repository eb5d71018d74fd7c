"""Predictor: one exported model plus what it needs to be used correctly (labels, size, preprocessing)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.runtime.backends import BACKENDS, Backend, open_backend
from edgecnn.runtime.bundle import MANIFEST_NAME, BundleError, Manifest, read_manifest
from edgecnn.runtime.preprocess import fit_image


class Predictor:
    """Classifies uint8 RGB images with an exported model through its runtime backend."""

    def __init__(self, backend: Backend, manifest: Manifest, path: Path, load_ms: float):
        self.backend = backend
        self.manifest = manifest
        self.path = path
        self.load_ms = load_ms

    @property
    def labels(self) -> list[str]:
        return self.manifest.labels

    @property
    def image_size(self) -> tuple[int, int]:
        return self.manifest.image_size

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (N, num_classes) for uint8 RGB images already at the model size, (N, H, W, 3)."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        expected = (*self.image_size, 3)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(
                f"predict expects uint8 images of shape (N, {expected[0]}, {expected[1]}, 3), got {images.shape};"
                " use classify() or edgecnn.runtime.preprocess.fit_image for other sizes"
            )
        if images.dtype != np.uint8:
            raise ValueError(f"predict expects uint8 RGB pixels, got dtype {images.dtype}")
        return np.stack([self.backend.run(image[None]) for image in images])

    def classify(self, image: np.ndarray, top_k: int = 5) -> list[tuple[str, float]]:
        """Top-k (label, probability) for one RGB image of any size, using the bundle's preprocessing."""
        fitted = fit_image(image, self.image_size, self.manifest.preprocessing.resize)  # type: ignore[arg-type]
        probabilities = self.predict(fitted[None])[0]
        order = np.argsort(probabilities)[::-1][:top_k]
        return [(self.labels[i], float(probabilities[i])) for i in order]

    def info(self) -> dict[str, Any]:
        """Backend, threads, precision and where the model came from."""
        return {
            **self.backend.info(),
            "format": self.manifest.format,
            "precision": self.manifest.precision,
            "model": str(self.path),
            "input": f"{self.image_size[0]}x{self.image_size[1]} uint8 RGB",
            "load_ms": round(self.load_ms, 2),
        }


def load(path: str | Path, threads: int | None = None) -> Predictor:
    """Load a bundle directory (or a model file inside one, or a bare model file) into a Predictor."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path}: no such bundle or model file")
    if path.is_dir():
        manifest = read_manifest(path)
        model_path = path / manifest.model_file
        if not model_path.is_file():
            raise BundleError(f"{path}: bundle.json names model file {manifest.model_file!r}, which is missing")
    elif (path.parent / MANIFEST_NAME).is_file():
        manifest, model_path = read_manifest(path.parent), path
    else:
        manifest, model_path = None, path
    if model_path.suffix.lower() not in BACKENDS:
        raise BundleError(
            f"{model_path}: not a model file this runtime can load; expected one of {sorted(BACKENDS)}"
        )
    started = time.perf_counter()
    backend = open_backend(model_path, threads)
    load_ms = (time.perf_counter() - started) * 1000
    if manifest is None:
        manifest = _bare_manifest(model_path, backend)
    return Predictor(backend, manifest, model_path, load_ms)


def _bare_manifest(model_path: Path, backend: Backend) -> Manifest:
    """A stand-in manifest for a model file without bundle.json: numbered labels, stretch resize."""
    height, width = backend.input_size
    probe = backend.run(np.zeros((1, height, width, 3), np.uint8))
    return Manifest(
        name=model_path.stem,
        format=model_path.suffix.lstrip("."),
        precision="unknown",
        model_file=model_path.name,
        labels=[f"class_{i}" for i in range(probe.shape[-1])],
        input={"height": height, "width": width},
        preprocessing={"resize": "stretch", "normalisation": "unknown (bare model file)"},
    )

"""Predictor: one exported model plus what it needs to be used correctly (labels, size, preprocessing)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import BundleError
from edgecnn.formats import format_of_model_file
from edgecnn.runtime.backends import Backend, open_backend
from edgecnn.runtime.bundle import MANIFEST_NAME, Manifest, new_manifest, read_manifest, verify_files
from edgecnn.runtime.embedder import Embedder
from edgecnn.runtime.loaded import LoadedModel
from edgecnn.runtime.preprocess import fit_image, model_batch


class Predictor(LoadedModel):
    """Classifies uint8 RGB images with an exported model through its runtime backend."""

    @property
    def labels(self) -> list[str]:
        return self.manifest.labels

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (N, num_classes) for uint8 RGB images already at the model size, (N, H, W, 3)."""
        images = model_batch(images, self.image_size, "predict", "classify()")
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
            "size_bytes": self.manifest.size_bytes,
        }


def load(path: str | Path, threads: int | None = None, verify: bool = True) -> Predictor | Embedder:
    """Load a bundle directory (or a model file inside one, or a bare model file) into a Predictor, or an Embedder
    for an embedding bundle (bundle.json task: embed)."""
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
    if verify and manifest is not None:
        # A bundle copied with a flipped byte must fail here, not classify wrongly (old bundles carry no hashes).
        verify_files(model_path.parent, manifest)
    started = time.perf_counter()
    backend = open_backend(model_path, threads)
    load_ms = (time.perf_counter() - started) * 1000
    if manifest is None:
        manifest = _bare_manifest(model_path, backend)
    else:
        check_model_matches(manifest, backend, model_path)
    return TASKS[manifest.task](backend, manifest, model_path, load_ms)


def check_model_matches(manifest: Manifest, backend: Backend, model_path: Path) -> None:
    """Raise BundleError unless the model file takes the input and gives the classes bundle.json describes.

    Catches a model file swapped for another model's, and labels that do not belong to the model.
    """
    if tuple(backend.input_size) != manifest.image_size:
        raise BundleError(
            f"{model_path}: the model takes {backend.input_size[0]}x{backend.input_size[1]} images but bundle.json "
            f"says {manifest.image_size[0]}x{manifest.image_size[1]}; the model file does not belong to this bundle"
        )
    if manifest.task == "embed":
        if backend.num_classes != manifest.embedding_size:
            raise BundleError(
                f"{model_path}: the model outputs {backend.num_classes} values but bundle.json says embedding_size "
                f"{manifest.embedding_size}; the model file does not belong to this bundle"
            )
        return
    if backend.num_classes != len(manifest.labels):
        raise BundleError(
            f"{model_path}: the model has {backend.num_classes} outputs but bundle.json lists {len(manifest.labels)} "
            "labels; the model file or labels do not belong to this bundle"
        )


# bundle.json task → what load() returns.
TASKS: dict[str, type[Predictor] | type[Embedder]] = {"classify": Predictor, "embed": Embedder}


def _bare_manifest(model_path: Path, backend: Backend) -> Manifest:
    """A stand-in manifest for a model file without bundle.json: numbered labels, stretch resize."""
    spec = format_of_model_file(model_path)
    return new_manifest(
        name=model_path.stem,
        format_name=spec.name if spec else model_path.suffix.lstrip("."),
        precision="unknown",
        model_path=model_path,
        labels=[f"class_{i}" for i in range(backend.num_classes)],
        image_size=backend.input_size,
        resize="stretch",
        normalisation="unknown (bare model file)",
    )

"""Embedder: an embedding bundle (backbone + global pooling + L2 normalisation) run through a runtime backend."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecnn.runtime.loaded import LoadedModel
from edgecnn.runtime.preprocess import fit_image, model_batch


class Embedder(LoadedModel):
    """Maps uint8 RGB images to L2-normalised float32 embeddings with an exported model (task: embed)."""

    @property
    def embedding_size(self) -> int:
        return int(self.manifest.embedding_size or self.backend.num_classes)

    def embed(self, images: np.ndarray) -> np.ndarray:
        """Embeddings (N, D) float32 of unit length for uint8 RGB images at the model size, (N, H, W, 3)."""
        images = model_batch(images, self.image_size, "embed", "embed_image()")
        if len(images) == 0:
            return np.zeros((0, self.embedding_size), np.float32)
        vectors = np.stack([self.backend.run(image[None]) for image in images]).astype(np.float32)
        # Re-normalised here: an int8 model's dequantised output is only approximately of unit length.
        return normalise(vectors)

    # The Predictor's name for "run the model on a batch", so latency benchmarks (edgecnn bench) time embedders too.
    predict = embed

    def embed_image(self, image: np.ndarray) -> np.ndarray:
        """The embedding (D,) of one RGB image of any size, using the bundle's preprocessing."""
        fitted = fit_image(image, self.image_size, self.manifest.preprocessing.resize)  # type: ignore[arg-type]
        return self.embed(fitted[None])[0]

    def info(self) -> dict[str, Any]:
        """Backend, threads, precision, embedding size and where the model came from."""
        return {
            **self.backend.info(),
            "task": "embed",
            "format": self.manifest.format,
            "precision": self.manifest.precision,
            "model": str(self.path),
            "input": f"{self.image_size[0]}x{self.image_size[1]} uint8 RGB",
            "embedding_size": self.embedding_size,
            "load_ms": round(self.load_ms, 2),
            "size_bytes": self.manifest.size_bytes,
        }


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 length (an all-zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)

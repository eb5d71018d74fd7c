"""What Predictor and Embedder share: an exported model opened through its backend, with its bundle manifest."""

from __future__ import annotations

from pathlib import Path

from edgecnn.runtime.backends import Backend
from edgecnn.runtime.bundle import Manifest


class LoadedModel:
    """An exported model opened through its runtime backend, with the manifest that says how to feed it."""

    def __init__(self, backend: Backend, manifest: Manifest, path: Path, load_ms: float):
        self.backend = backend
        self.manifest = manifest
        self.path = path
        self.load_ms = load_ms

    @property
    def image_size(self) -> tuple[int, int]:
        return self.manifest.image_size

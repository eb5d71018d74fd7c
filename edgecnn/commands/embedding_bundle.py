"""Loading an embedding bundle for the retrieval commands, with a clear error for a classifier bundle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.errors import BundleError

if TYPE_CHECKING:
    from edgecnn.runtime import Embedder


def load_embedder(path: str, threads: int | None = None) -> Embedder:
    """The Embedder of the bundle at `path`, or a BundleError when it is a classifier bundle."""
    from edgecnn.runtime import Embedder, load

    model = load(path, threads=threads)
    if not isinstance(model, Embedder):
        raise BundleError(
            f"{path}: a {model.manifest.task} bundle, not an embedding bundle; export one with "
            f"`edgecnn export RUN --task embed`"
        )
    return model

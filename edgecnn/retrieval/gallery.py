"""Gallery files: embeddings, labels and file paths of indexed images, in a pickle-free .npz that names its bundle."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.atomic import temporary_sibling
from edgecnn.errors import GalleryError
from edgecnn.formats import model_files
from edgecnn.runtime import Embedder

GALLERY_VERSION = 1
NO_LABEL = -1  # an image indexed from a folder without class sub-directories


@dataclass
class Gallery:
    """Unit-length embeddings (N, D) float32 of indexed images, their labels (N,) and paths (N,)."""

    embeddings: np.ndarray
    labels: np.ndarray  # index into class_names, NO_LABEL when unknown
    paths: list[str]
    class_names: list[str]
    bundle: dict[str, Any] = field(default_factory=dict)  # name, format, precision, embedding_size, fingerprint

    def __post_init__(self) -> None:
        if not (len(self.embeddings) == len(self.labels) == len(self.paths)):
            raise ValueError(
                f"{len(self.embeddings)} embeddings, {len(self.labels)} labels and {len(self.paths)} paths differ"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def label_names(self, indices: np.ndarray) -> list[str]:
        """The class name of each gallery entry in `indices` ('' when unlabelled)."""
        return [self.class_names[self.labels[i]] if self.labels[i] != NO_LABEL else "" for i in indices]


def bundle_fingerprint(embedder: Embedder) -> dict[str, Any]:
    """What identifies the bundle a gallery was built with: its name and precision, and a hash of its model files."""
    digest = hashlib.sha256()
    for path in model_files(embedder.path):
        digest.update(path.read_bytes())
    manifest = embedder.manifest
    return {
        "name": manifest.name, "format": manifest.format, "precision": manifest.precision,
        "embedding_size": embedder.embedding_size, "sha256": digest.hexdigest(), "path": str(embedder.path.parent),
    }


def check_gallery_bundle(gallery: Gallery, embedder: Embedder, gallery_path: str | Path = "gallery") -> None:
    """Raise GalleryError unless `gallery` was built with the bundle `embedder` runs."""
    mine = bundle_fingerprint(embedder)
    theirs = gallery.bundle
    if theirs.get("sha256") == mine["sha256"]:
        return
    raise GalleryError(
        f"{gallery_path}: built with bundle {theirs.get('name')!r} ({theirs.get('format')} {theirs.get('precision')}, "
        f"{theirs.get('embedding_size')}-d), not with {mine['name']!r} ({mine['format']} {mine['precision']}, "
        f"{mine['embedding_size']}-d) from {embedder.path.parent}; embeddings of different models are not "
        "comparable: index the images again with this bundle (`edgecnn index`)"
    )


def save_gallery(gallery: Gallery, path: str | Path) -> Path:
    """Write `gallery` to `path` (.npz, plain arrays only) atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        raise GalleryError(f"gallery files end in .npz; got {path}")
    bundle_keys = sorted(gallery.bundle)
    with temporary_sibling(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                version=np.int64(GALLERY_VERSION),
                embeddings=gallery.embeddings.astype(np.float32),
                labels=gallery.labels.astype(np.int64),
                paths=np.asarray(gallery.paths, dtype=np.str_).reshape(len(gallery.paths)),
                class_names=np.asarray(gallery.class_names, dtype=np.str_).reshape(len(gallery.class_names)),
                bundle_keys=np.asarray(bundle_keys, dtype=np.str_),
                bundle_values=np.asarray([str(gallery.bundle[k]) for k in bundle_keys], dtype=np.str_),
            )
    return path


def load_gallery(path: str | Path, embedder: Embedder | None = None) -> Gallery:
    """Read a gallery file (never unpickling); with `embedder`, refuse a gallery built with another bundle."""
    path = Path(path)
    if not path.is_file():
        raise GalleryError(f"{path}: no such gallery file; build one with `edgecnn index BUNDLE --data DIR --out FILE`")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise GalleryError(f"{path}: not a gallery file ({type(exc).__name__}: {exc})") from None
    missing = {"version", "embeddings", "labels", "paths", "class_names", "bundle_keys", "bundle_values"} - set(arrays)
    if missing:
        raise GalleryError(f"{path}: not a gallery file written by `edgecnn index` (missing {sorted(missing)})")
    if int(arrays["version"]) != GALLERY_VERSION:
        raise GalleryError(f"{path}: gallery version {int(arrays['version'])}, this edgecnn reads {GALLERY_VERSION}")
    bundle: dict[str, Any] = dict(zip(arrays["bundle_keys"].tolist(), arrays["bundle_values"].tolist()))
    if "embedding_size" in bundle:
        bundle["embedding_size"] = int(bundle["embedding_size"])
    gallery = Gallery(
        arrays["embeddings"].astype(np.float32), arrays["labels"].astype(np.int64), arrays["paths"].tolist(),
        arrays["class_names"].tolist(), bundle,
    )
    if embedder is not None:
        check_gallery_bundle(gallery, embedder, path)
    return gallery

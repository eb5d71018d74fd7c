"""bundle.json: what travels with an exported model (labels, input, preprocessing, provenance, checks).

Written by the export side, read by the device side; this module is the single definition of the schema and
imports no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgecnn.atomic import write_json
from edgecnn.errors import BundleError
from edgecnn.formats import model_files, size_bytes
from edgecnn.runtime.preprocess import ResizeMode

__all__ = [
    "MANIFEST_NAME", "BundleError", "Manifest", "file_sha256", "new_manifest", "read_manifest", "verify_files",
    "write_manifest",
]

MANIFEST_NAME = "bundle.json"
SCHEMA_VERSION = 1
# What a bundle's model outputs: class probabilities (Predictor) or an L2-normalised embedding (Embedder).
Task = Literal["classify", "embed"]


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    channels: int = 3
    dtype: str = "uint8"
    color: str = "RGB"


class PreprocessingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resize: ResizeMode = "stretch"
    normalisation: str = Field(description="what the model does inside the graph, for the record")


class Manifest(BaseModel):
    """Contents of bundle.json."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    schema_version: int = SCHEMA_VERSION
    name: str
    format: str
    precision: str
    model_file: str
    labels: list[str]  # an embedding bundle keeps its run's class names (the data it was trained on)
    task: Task = "classify"  # bundles written before embedding bundles existed are classifiers
    embedding_size: int | None = Field(None, gt=0, description="length of the embedding (task: embed)")
    input: InputSpec
    preprocessing: PreprocessingSpec
    source: dict[str, Any] = Field(default_factory=dict)
    checks: dict[str, Any] = Field(default_factory=dict)
    size_bytes: int = 0
    sha256: dict[str, str] = Field(
        default_factory=dict, description="SHA-256 of the model file and its sidecars by file name (empty: a bundle "
        "exported before edgecnn recorded them, not verified)",
    )
    edgecnn_version: str = ""

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.input.height, self.input.width)


def new_manifest(
    name: str,
    format_name: str,
    precision: str,
    model_path: Path,
    labels: list[str],
    image_size: tuple[int, int],
    resize: str,
    normalisation: str,
    source: dict[str, Any] | None = None,
    edgecnn_version: str = "",
    task: Task = "classify",
    embedding_size: int | None = None,
) -> Manifest:
    """The manifest of the model file at `model_path`: the one place a Manifest is assembled (size from the format
    table, so every command counts sidecar files alike)."""
    height, width = image_size
    return Manifest(
        name=name,
        format=format_name,
        precision=precision,
        model_file=Path(model_path).name,
        labels=list(labels),
        task=task,
        embedding_size=embedding_size,
        input={"height": height, "width": width},
        preprocessing={"resize": resize, "normalisation": normalisation},
        source=dict(source or {}),
        size_bytes=size_bytes(model_path),
        sha256={path.name: file_sha256(path) for path in model_files(model_path)},
        edgecnn_version=edgecnn_version,
    )


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (hashlib.file_digest needs Python 3.11)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_files(bundle_dir: str | Path, manifest: Manifest) -> None:
    """Raise BundleError naming the file unless every file bundle.json hashes is present with that SHA-256."""
    for name, expected in manifest.sha256.items():
        path = Path(bundle_dir) / name
        if not path.is_file():
            raise BundleError(f"{path}: missing; bundle.json records its SHA-256, copy the whole bundle again")
        actual = file_sha256(path)
        if actual != expected:
            raise BundleError(
                f"{path}: SHA-256 {actual[:16]}… does not match bundle.json's {expected[:16]}…: the file is corrupt "
                "or was changed after export; copy the bundle again (or pass --no-verify to load it anyway)"
            )


def read_manifest(bundle_dir: str | Path) -> Manifest:
    """Read and validate `bundle_dir/bundle.json`, raising BundleError with the reason."""
    path = Path(bundle_dir) / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: no {MANIFEST_NAME} found; expected a bundle written by `edgecnn export`")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from exc
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}" for e in exc.errors())
        raise BundleError(f"{path}: invalid bundle manifest: {problems}") from None


def write_manifest(bundle_dir: str | Path, manifest: Manifest) -> Path:
    """Write bundle.json (and labels.txt for humans and other tools) atomically."""
    bundle_dir = Path(bundle_dir)
    (bundle_dir / "labels.txt").write_text("\n".join(manifest.labels) + "\n", encoding="utf-8")
    return write_json(bundle_dir / MANIFEST_NAME, manifest.model_dump(mode="json"))

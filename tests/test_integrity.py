"""Bundle integrity: bundle.json records each model file's SHA-256 and runtime.load refuses a changed file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecnn.cli import main
from edgecnn.errors import BundleError
from edgecnn.runtime import load
from edgecnn.runtime.bundle import MANIFEST_NAME, file_sha256, new_manifest, read_manifest, verify_files


def _copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / bundle.name))


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_manifest_records_sha256_of_model_file(bundles):
    manifest = read_manifest(bundles["int8"])
    assert manifest.sha256 == {"model.tflite": file_sha256(bundles["int8"] / "model.tflite")}
    assert len(manifest.sha256["model.tflite"]) == 64


def test_flipped_byte_in_int8_tflite_fails_load(bundles, tmp_path):
    bundle = _copy(bundles["int8"], tmp_path)
    model = bundle / "model.tflite"
    _flip_byte(model, model.stat().st_size // 2)  # inside the weights: the file still parses and runs
    with pytest.raises(BundleError, match=r"model\.tflite: SHA-256 .* does not match bundle\.json"):
        load(bundle)
    with pytest.raises(BundleError, match="model.tflite"):
        load(model)  # the model file inside a bundle is verified too
    loaded = load(bundle, verify=False)  # --no-verify: the user takes the risk
    assert loaded.predict(np.zeros((1, *loaded.image_size, 3), np.uint8)).shape == (1, len(loaded.labels))


def test_cli_reports_corrupt_bundle_in_one_line(bundles, tmp_path, capsys):
    bundle = _copy(bundles["int8"], tmp_path)
    _flip_byte(bundle / "model.tflite", 100)
    assert main(["eval", str(bundle), "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgecnn eval: error:") and "model.tflite" in err[0]


def test_bundle_without_hashes_still_loads(bundles, tmp_path):
    bundle = _copy(bundles["float32"], tmp_path)
    raw = json.loads((bundle / MANIFEST_NAME).read_text())
    del raw["sha256"]  # a bundle exported before hashes were recorded
    (bundle / MANIFEST_NAME).write_text(json.dumps(raw))
    _flip_byte(bundle / "model.tflite", 100)  # unverifiable, so it loads: the old behaviour
    assert read_manifest(bundle).sha256 == {}
    assert load(bundle).labels == raw["labels"]


def test_sidecar_files_are_hashed_and_verified(tmp_path):
    # An OpenVINO bundle's weights live in model.bin beside model.xml: a flipped weight byte must be caught too.
    (tmp_path / "model.xml").write_text("<net/>")
    (tmp_path / "model.bin").write_bytes(bytes(range(256)) * 4)
    manifest = new_manifest(name="x", format_name="openvino", precision="int8", model_path=tmp_path / "model.xml",
                            labels=["a", "b"], image_size=(16, 16), resize="stretch", normalisation="none")
    assert set(manifest.sha256) == {"model.xml", "model.bin"}
    verify_files(tmp_path, manifest)
    _flip_byte(tmp_path / "model.bin", 7)
    with pytest.raises(BundleError, match=r"model\.bin: SHA-256"):
        verify_files(tmp_path, manifest)
    (tmp_path / "model.bin").unlink()
    with pytest.raises(BundleError, match=r"model\.bin: missing"):
        verify_files(tmp_path, manifest)

"""The device runtime: TensorFlow-free imports, bundle loading errors, Predictor contract, preprocessing, quant."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CLASSES, IMAGE_SIZE
from helpers import NO_TENSORFLOW  # noqa: E402

from edgecnn.runtime import BundleError, ImageDecodeError, fit_image, load, read_image
from edgecnn.runtime.preprocess import fit_batch, to_rgb
from edgecnn.runtime.quant import dequantize, quantize

REPO = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter where importing TensorFlow or Keras fails, as on a device without them.
DEVICE_SCRIPT = NO_TENSORFLOW + textwrap.dedent("""
    import edgecnn.bench.evaluate, edgecnn.bench.latency, edgecnn.report
    import edgecnn.cli, edgecnn.commands.bench, edgecnn.commands.eval, edgecnn.runtime
    imported = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))

    import argparse, io, contextlib, numpy as np
    predictor = edgecnn.runtime.load(sys.argv[1], threads=1)
    probabilities = predictor.predict(np.zeros((2, *predictor.image_size, 3), np.uint8))
    stats = edgecnn.bench.latency.measure_latency(predictor, runs=3, warmup=1)
    parser = argparse.ArgumentParser()
    edgecnn.commands.eval.add_arguments(parser)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        edgecnn.commands.eval.run(parser.parse_args([sys.argv[1], "--json", "--out", sys.argv[2]]))
    print(json.dumps({"imported": imported, "shape": list(probabilities.shape), "runs": stats.runs,
                      "top1": json.loads(out.getvalue())["top1"]}))
""")


def test_runtime_eval_and_bench_run_without_tensorflow(bundles: dict[str, Path], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", DEVICE_SCRIPT, str(bundles["int8"]), str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "imported": [], "shape": [2, len(CLASSES)], "runs": 3, "top1": 1.0,
    }


# --- loading bundles ---------------------------------------------------------------------------------------------


def test_load_rejects_what_is_not_a_model(tmp_path: Path) -> None:
    text = tmp_path / "text" / "model.tflite"
    text.parent.mkdir()
    text.write_text("hello, I am not a flatbuffer\n")
    with pytest.raises(BundleError, match=r"model.tflite: not a valid TFLite model"):
        load(text)
    jpeg = tmp_path / "photo.jpg"
    cv2.imwrite(str(jpeg), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(BundleError, match=r"photo.jpg: not a model file this runtime can load; expected one of"):
        load(jpeg)
    with pytest.raises(BundleError, match=r"missing: no such bundle or model file"):
        load(tmp_path / "missing")
    with pytest.raises(BundleError, match=r"no bundle.json found; expected a bundle written by `edgecnn export`"):
        load(tmp_path)


def test_load_rejects_broken_manifests(bundles: dict[str, Path], tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(bundles["float32"], bundle)
    (bundle / "model.tflite").unlink()
    with pytest.raises(BundleError, match=r"names model file 'model.tflite', which is missing"):
        load(bundle)
    (bundle / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"bundle.json: not valid JSON"):
        load(bundle)
    (bundle / "bundle.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(BundleError, match=r"invalid bundle manifest:(.|\n)*labels(.|\n)*Field required"):
        load(bundle)


def test_load_a_bare_model_file_numbers_its_labels(bundles: dict[str, Path], tmp_path: Path) -> None:
    bare = tmp_path / "model.tflite"
    shutil.copy(bundles["int8"] / "model.tflite", bare)
    predictor = load(bare)
    assert predictor.labels == ["class_0", "class_1", "class_2"]
    assert predictor.image_size == (IMAGE_SIZE, IMAGE_SIZE) and predictor.manifest.precision == "unknown"


# --- the Predictor contract --------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_predictor_returns_probabilities_per_image(bundles: dict[str, Path], precision: str) -> None:
    predictor = load(bundles[precision], threads=1)
    assert predictor.labels == CLASSES and predictor.load_ms > 0
    images = np.random.default_rng(0).integers(0, 256, (3, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    probabilities = predictor.predict(images)
    assert probabilities.shape == (3, 3) and probabilities.dtype == np.float32
    # int8 outputs are uint8 steps of 1/256, so their sums are only close to 1.
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=0.02 if precision == "int8" else 1e-5)
    np.testing.assert_array_equal(predictor.predict(images[0]), probabilities[:1])  # (H, W, 3) is a batch of 1
    info = predictor.info()
    assert (info["backend"], info["threads"], info["precision"]) == ("litert", 1, precision)
    assert info["input_dtype"] == ("uint8" if precision == "int8" else "float32")


def test_predictor_rejects_wrong_shapes_and_dtypes(bundles: dict[str, Path]) -> None:
    predictor = load(bundles["float32"])
    with pytest.raises(ValueError, match=r"shape \(N, 16, 16, 3\), got \(1, 32, 32, 3\); use classify\(\)"):
        predictor.predict(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"got \(16, 16\)"):
        predictor.predict(np.zeros((16, 16), np.uint8))
    with pytest.raises(ValueError, match="expects uint8 RGB pixels, got dtype float32"):
        predictor.predict(np.zeros((1, 16, 16, 3), np.float32))


def test_classify_resizes_any_image_and_ranks_labels(bundles: dict[str, Path]) -> None:
    predictor = load(bundles["float32"])
    red = np.zeros((90, 60, 3), np.uint8)
    red[..., 0] = 230
    ranked = predictor.classify(red, top_k=2)
    assert len(ranked) == 2 and ranked[0][0] == "red" and ranked[0][1] >= ranked[1][1]


# --- preprocessing -----------------------------------------------------------------------------------------------


def test_to_rgb_handles_grey_alpha_and_bgr() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(to_rgb(grey), np.repeat(grey[..., None], 3, axis=2))
    np.testing.assert_array_equal(to_rgb(grey[..., None]), to_rgb(grey))
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 7
    assert to_rgb(rgba).shape == (2, 2, 3) and to_rgb(rgba)[0, 0].tolist() == [200, 0, 0]
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV's channel order
    assert to_rgb(bgr, bgr=True)[0, 0].tolist() == [0, 0, 255] and to_rgb(bgr)[0, 0].tolist() == [255, 0, 0]
    with pytest.raises(ValueError, match="expected uint8 pixels, got dtype float32"):
        to_rgb(np.zeros((2, 2, 3), np.float32))


def test_read_image_decodes_to_rgb(tmp_path: Path) -> None:
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 2] = 255  # red, in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    image = read_image(tmp_path / "red.png")
    assert image.shape == (5, 7, 3) and image[0, 0].tolist() == [255, 0, 0]
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((4, 4), 77, np.uint8))
    assert read_image(tmp_path / "grey.png")[0, 0].tolist() == [77, 77, 77]
    cv2.imwrite(str(tmp_path / "rgba.png"), np.full((4, 4, 4), 90, np.uint8))
    assert read_image(tmp_path / "rgba.png").shape == (4, 4, 3)
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((4, 4, 3), 0xAB00, np.uint16))
    assert read_image(tmp_path / "deep.png")[0, 0].tolist() == [0xAB] * 3  # 16-bit keeps the top byte


def test_read_image_raises_on_corrupt_and_empty_files(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ImageDecodeError, match=r"broken.jpg: not a decodable image \(14 bytes\)"):
        read_image(tmp_path / "broken.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty.png: empty file"):
        read_image(tmp_path / "empty.png")


def test_center_crop_keeps_the_middle_and_stretch_keeps_everything() -> None:
    # 20 x 40 (h x w): left quarter black, middle half grey, right quarter white.
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, 10:30], image[:, 30:] = 128, 255
    cropped = fit_image(image, (10, 10), "center_crop")  # scale 0.5 → 10 x 20, keep columns 5..14
    assert cropped.shape == (10, 10, 3) and np.all(cropped == 128)
    stretched = fit_image(image, (10, 10), "stretch")  # columns shrink 4:1, rows 2:1
    assert stretched.shape == (10, 10, 3)
    assert np.all(stretched[:, :2] == 0) and np.all(stretched[:, 3:7] == 128) and np.all(stretched[:, 8:] == 255)
    assert np.all(stretched[:, 2] == 64)  # columns 8..11: two black, two grey
    tall = fit_image(np.zeros((40, 20, 3), np.uint8), (12, 12), "center_crop")
    assert tall.shape == (12, 12, 3)
    with pytest.raises(ValueError, match=r"resize mode must be one of \('stretch', 'center_crop'\), got 'fill'"):
        fit_image(image, (10, 10), "fill")  # type: ignore[arg-type]


def test_fit_batch_resizes_grey_batches_and_passes_fitted_ones_through() -> None:
    grey = np.full((2, 28, 28), 9, np.uint8)
    fitted = fit_batch(grey, (16, 16))
    assert fitted.shape == (2, 16, 16, 3) and np.all(fitted == 9)
    assert fit_batch(fitted, (16, 16)) is fitted
    assert fit_batch(grey[:0], (16, 16)).shape == (0, 16, 16, 3)


# --- quantisation helpers ----------------------------------------------------------------------------------------


def test_quantize_maps_pixels_to_the_input_dtype() -> None:
    pixels = np.array([0, 1, 128, 255], np.uint8)
    assert quantize(pixels, np.float32, (0.0, 0)).tolist() == [0.0, 1.0, 128.0, 255.0]
    same = quantize(pixels, np.uint8, (1.0, 0))
    assert same.dtype == np.uint8 and same.tolist() == [0, 1, 128, 255]
    assert quantize(pixels, np.int8, (1.0, -128)).tolist() == [-128, -127, 0, 127]
    assert quantize(pixels, np.int8, (2.0, 0)).tolist() == [0, 0, 64, 127]  # 0.5 rounds to even; 127.5 → 127
    assert quantize(pixels, np.uint8, (0.5, 0)).tolist() == [0, 2, 255, 255]  # clipped at the dtype's range


def test_dequantize_maps_outputs_to_float() -> None:
    raw = np.array([[0, 128, 255]], np.uint8)
    assert dequantize(raw, (1 / 256, 0)).tolist() == [[0.0, 0.5, 255 / 256]]
    assert dequantize(np.array([-128, 127], np.int8), (0.5, -128)).tolist() == [0.0, 127.5]
    floats = np.array([0.25, 0.75], np.float32)
    assert dequantize(floats, (0.0, 0)) is floats
    assert dequantize(raw, (0.0, 0)).dtype == np.float32

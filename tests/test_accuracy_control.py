"""Accuracy control: a model whose logits int8 cannot hold is diagnosed, recovered, or refused without a bundle."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecnn.config import parse_recipe
from edgecnn.errors import ExportError
from edgecnn.export import control
from edgecnn.formats import FORMATS, FormatSpec

RECIPE = {
    "name": "outlier",
    # The ONNX tests' recipe: 40 digits per class, 100 validation images, ~85 % validation top-1 in a few seconds.
    "data": {
        "source": "builtin", "path": "digits", "image_size": 16, "max_per_class": 40,
        "val_fraction": 0.25, "test_fraction": 0.25,
    },
    "model": {"name": "tiny_cnn", "dropout": 0.0},
    "train": {"epochs": 8, "batch_size": 16, "learning_rate": 0.01},
    "export": {"calibration_images": 100},
}
# Softmax ignores a constant shift of the logits, so Keras' accuracy is unchanged, but the logits tensor's int8
# range grows from about ±10 to 0..1010: one step of 3.9 swallows the differences between classes.
LOGIT_SHIFT = 1000.0
# On the 100 validation images (Keras about 85 %) int8 loses about half of them whatever the calibration set, while
# the remedies that keep the logits out of int8 lose at most an image. The exact counts move by an image or two
# between CPUs (float training is not bit-identical across instruction sets), so the tests assert these bounds.
INT8_LOSS_AT_LEAST = 40.0  # points: the collapse the shift causes
REMEDY_LOSS_AT_MOST = 1.0  # points: float FC + softmax (TFLite, ONNX) or int16x8


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny_cnn run whose classifier bias is shifted by LOGIT_SHIFT (same predictions in float)."""
    from edgecnn.export.backend import require_tensorflow_backend

    require_tensorflow_backend()
    import keras

    from edgecnn.train.runner import train

    run = train(parse_recipe(RECIPE), tmp_path_factory.mktemp("runs"))
    model = keras.saving.load_model(run.model, compile=False)
    dense = model.get_layer("predictions")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias + LOGIT_SHIFT])
    model.save(run.model)
    return run.root


def test_remedy_tables_match_the_format_table() -> None:
    controlled = {name for name, spec in FORMATS.items() if spec.controlled_precisions}
    assert controlled == {name for name, spec in FORMATS.items() if "int8" in spec.precisions}
    for name in controlled:
        module = FORMATS[name].load_accuracy()
        assert callable(module.diagnose) and module.REMEDIES, name
        for remedy in module.REMEDIES:
            assert remedy.precision in FORMATS[name].precisions, (name, remedy.name)
    assert "int16x8" in FORMATS["tflite"].precisions


def test_budget_applies_to_int8_of_formats_with_remedies(monkeypatch: pytest.MonkeyPatch) -> None:
    assert control.budget("tflite", "int8", 0.5) == 0.5
    assert control.budget("tflite", "float32", 0.5) is None  # float exports are checked by parity alone
    assert control.budget("onnx", "int8", None) is None
    spec = FORMATS["openvino"]
    monkeypatch.setitem(FORMATS, "openvino", FormatSpec(**{**spec.__dict__, "accuracy": None}))
    with pytest.raises(ExportError, match="has no remedies for format 'openvino'"):
        control.budget("openvino", "int8", 0.5)
    assert parse_recipe({**RECIPE, "export": {"max_drop": 0.5}}).export.max_drop == 0.5
    assert parse_recipe(RECIPE).export.max_drop is None


@pytest.mark.slow
def test_diagnosis_names_the_logits_and_float_fallback_recovers(run_dir: Path, tmp_path: Path) -> None:
    from edgecnn.export.pipeline import export_run
    from edgecnn.runtime import load

    result = export_run(run_dir, "tflite", "int8", tmp_path, max_drop=1.0)
    control = result.manifest.checks["accuracy_control"]
    worst, *others = control["diagnosis"]
    assert (worst["keras_layer"], worst["op"]) == ("predictions", "FULLY_CONNECTED")
    assert worst["noise_to_signal"] > 1.0 and all(layer["noise_to_signal"] < 0.05 for layer in others)
    outcomes = [(a["strategy"], a["meets_budget"]) for a in control["attempts"]]
    assert outcomes == [("baseline", False), ("larger_calibration", False), ("float_fallback", True)]
    baseline, larger, fallback = (a["top1_drop_points"] for a in control["attempts"])
    assert baseline >= INT8_LOSS_AT_LEAST and fallback <= REMEDY_LOSS_AT_MOST
    assert larger >= INT8_LOSS_AT_LEAST  # more images of the same distribution: the same range, the same loss
    assert control["attempts"][1]["calibration_images"] == 200  # every training image
    assert control["attempts"][2]["float_layers"][0] == worst["tensor"]
    assert control["kept"] == "float_fallback" and result.manifest.precision == "int8"

    bundle = result.bundle_dir
    assert bundle == tmp_path / "outlier-tflite-int8" and sorted(p.name for p in tmp_path.iterdir()) == [bundle.name]
    written = json.loads((bundle / "bundle.json").read_text())
    assert written["checks"]["accuracy_control"]["kept"] == "float_fallback"
    assert {"DEQUANTIZE", "FULLY_CONNECTED", "SOFTMAX"} <= set(written["checks"]["ops"])
    # The same device interface as the plain int8 bundle: uint8 pixels in, uint8 probabilities out.
    info = load(bundle).info()
    assert (info["input_dtype"], info["output_dtype"], info["input_quantization"]) == ("uint8", "uint8", [1.0, 0.0])


@pytest.fixture
def tflite_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorFlow Lite's converter and debugger, and edgecnn's TFLite modules, fail if anything touches them.

    `import tensorflow` loads tensorflow.lite itself, so the block is on what uses it rather than on the import.
    """
    import sys

    import tensorflow as tf

    import edgecnn.export

    def refuse(*args, **kwargs):
        raise AssertionError("TensorFlow Lite was used by a non-TFLite accuracy control")

    monkeypatch.setattr(tf.lite, "TFLiteConverter", refuse)
    monkeypatch.setattr(tf.lite.experimental, "QuantizationDebugger", refuse)
    for name in ("tflite", "tflite_accuracy"):
        monkeypatch.setitem(sys.modules, f"edgecnn.export.{name}", None)  # importing it raises ImportError
        monkeypatch.delattr(edgecnn.export, name, raising=False)


@pytest.mark.slow
def test_onnx_float_fallback_excludes_the_nodes_int8_hurts(run_dir: Path, tmp_path: Path, tflite_unusable) -> None:
    from edgecnn.export.pipeline import export_run

    result = export_run(run_dir, "onnx", "int8", tmp_path, max_drop=0.5)
    control = result.manifest.checks["accuracy_control"]
    outcomes = [(a["strategy"], a["meets_budget"]) for a in control["attempts"]]
    assert outcomes == [
        ("baseline", False), ("entropy_calibration", False), ("percentile_calibration", False), ("float_fallback", True)
    ]
    drops = [a["top1_drop_points"] for a in control["attempts"]]
    assert min(drops[:3]) >= INT8_LOSS_AT_LEAST and drops[3] <= 0.5
    fallback = control["attempts"][-1]
    worst, *others = fallback["onnx_diagnosis"]
    # The logits: the dense layer's Gemm adds the error; its Softmax consumer stays float with it.
    assert (worst["tensor"], worst["op"]) == ("Gemm_11.output0", "Gemm")
    assert worst["float_nodes"] == ["Gemm_11", "Softmax_12"]
    assert worst["added_noise_to_signal"] > 0.5 and all(row["added_noise_to_signal"] < 0.05 for row in others)
    # One more activation per try until within budget; the first try is the logits alone. How many tries the budget
    # takes depends on the CPU's int8 kernels (an image or two either way), so the tries are checked, not counted.
    tries = fallback["float_node_tries"]
    assert tries[0]["float_activations"] == 1 and tries[0]["float_nodes"] == 2
    assert tries[-1]["top1_drop_points"] == drops[3] <= 0.5 and all(t["top1_drop_points"] > 0.5 for t in tries[:-1])
    assert fallback["float_nodes"][:2] == ["Gemm_11", "Softmax_12"]
    assert control["kept"] == "float_fallback" and result.manifest.precision == "int8"

    written = json.loads((result.bundle_dir / "bundle.json").read_text())
    assert written["checks"]["onnx_metadata"] == {
        "precision": "int8", "calibration_method": "minmax", "activation_type": "uint8", "reduce_range": "true",
        "nodes_to_exclude": ",".join(fallback["float_nodes"]),
    }
    assert written["checks"]["op_counts"]["Conv"] == 2 and {"Gemm", "Softmax"} <= set(written["checks"]["ops"])


@pytest.mark.slow
def test_impossible_budget_fails_listing_attempts_and_leaves_no_bundle(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgecnn.cli import main

    out = tmp_path / "bundles"
    args = ["export", str(run_dir), "--format", "tflite", "--precision", "int8", "--out", str(out)]
    assert main([*args, "--max-drop", "-10"]) == 2
    error = capsys.readouterr().err
    assert "outlier-tflite-int8: no export kept validation top-1 within -10.0 points of Keras" in error
    rows = {line.split()[0]: float(line.split()[2]) for line in error.splitlines() if line.endswith("over budget")}
    assert list(rows) == ["baseline", "larger_calibration", "float_fallback", "int16x8"]
    assert min(rows["baseline"], rows["larger_calibration"]) >= INT8_LOSS_AT_LEAST
    assert max(rows["float_fallback"], rows["int16x8"]) <= REMEDY_LOSS_AT_MOST
    assert re.search(r"worst int8 layers: predictions \(\d+\.\d\d\)", error)
    assert list(out.iterdir()) == []  # neither the bundle nor a temporary attempt


@pytest.mark.slow
def test_int16x8_runs_on_builtin_ops_through_the_runtime(run_dir: Path, tmp_path: Path) -> None:
    from edgecnn.export.pipeline import export_run
    from edgecnn.runtime import load

    result = export_run(run_dir, "tflite", "int16x8", tmp_path)
    checks = result.manifest.checks
    assert result.passed and checks["parity"]["top1_drop_points"] <= REMEDY_LOSS_AT_MOST
    assert checks["ops"] == ["CONV_2D", "DEQUANTIZE", "FULLY_CONNECTED", "MAX_POOL_2D", "MEAN", "QUANTIZE", "SOFTMAX"]
    assert checks["calibration_images"] == 100 and "accuracy_control" not in checks
    predictor = load(result.bundle_dir)
    assert (predictor.info()["input_dtype"], predictor.info()["output_dtype"]) == ("float32", "float32")
    probabilities = predictor.predict(np.zeros((2, 16, 16, 3), np.uint8))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)

    from edgecnn.runtime.backends.litert import _interpreter_class

    interpreter_class, _ = _interpreter_class()
    interpreter = interpreter_class(model_path=str(result.bundle_dir / "model.tflite"))
    activation_types = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    assert "int16" in activation_types and "int8" in activation_types  # int16 activations, int8 weights


@pytest.fixture
def dim_calibration_run(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the run whose stored calibration sample is 8× too dark: int8 input ranges that clip real pixels.

    A calibration set that does not represent the data is the everyday way int8 loses accuracy; it breaks NNCF's
    int8 on every CPU (the logit shift does not: NNCF leaves the logits in float).
    """
    from edgecnn.data.calibration import CalibrationSample

    copy = tmp_path / "dim-run"
    shutil.copytree(run_dir, copy)
    sample = CalibrationSample.load(copy / "calibration.npz")
    CalibrationSample(sample.images // 8, sample.labels, sample.ranks, sample.num_classes, sample.per_class).save(
        copy / "calibration.npz"
    )
    return copy


@pytest.mark.slow
def test_openvino_accuracy_control_reverts_layers_to_float(
    dim_calibration_run: Path, tmp_path: Path, tflite_unusable
) -> None:
    from edgecnn.export.pipeline import export_run

    result = export_run(dim_calibration_run, "openvino", "int8", tmp_path, max_drop=0.5)
    control = result.manifest.checks["accuracy_control"]
    (baseline, remedy) = control["attempts"]
    assert (baseline["strategy"], baseline["meets_budget"]) == ("baseline", False)
    assert baseline["top1_drop_points"] >= 10  # clipped pixels
    assert (remedy["strategy"], remedy["meets_budget"]) == ("nncf_accuracy_control", True)
    assert remedy["top1_drop_points"] <= 0.5
    plain = export_run(dim_calibration_run, "openvino", "int8", tmp_path / "plain").manifest.checks
    assert 0 < result.manifest.checks["fake_quantize_nodes"] < plain["fake_quantize_nodes"]  # some reverted to float
    assert result.passed and control["kept"] == "nncf_accuracy_control"


def test_noise_to_signal_stays_finite_for_float32_tensors_beyond_sqrt_of_its_range():
    # QuantizationDebugger hands over float32 tensors; squaring an error of 1e20 overflows float32 to inf.
    reference = [np.array([3e20, 1e20], np.float32)]
    assert control.noise_to_signal(reference, [np.array([-3e20, 1e20], np.float32)]) == pytest.approx(np.sqrt(18))

"""OpenVINO export and runtime: IR parity with Keras per precision, pipeline bundles, bad files, TF-free runtime."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import held_out_images, load_trained, train_tiny_run

pytest.importorskip("openvino", reason="OpenVINO extra not installed: pip install edgecnn[openvino]")

from edgecnn.runtime import BundleError, load  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
RECIPE = {
    "name": "digits-ov",
    "data": {"source": "builtin", "path": "digits", "image_size": 16, "max_per_class": 20},
    "model": {"name": "tiny_cnn", "dropout": 0.0},
    # 8 epochs, not 2: a model that is still near chance has near-tied probabilities, where int8 flips top-1 by
    # rounding alone and the agreement figure measures noise. These 8 reach ~90 % test top-1 in a few seconds.
    "train": {"epochs": 16, "batch_size": 8, "learning_rate": 0.01},
    "export": {"calibration_images": 100},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny_cnn run on 16 px built-in digits (10 classes, 20 images each)."""
    return train_tiny_run(RECIPE, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def trained(run_dir: Path):
    """(Keras model, all 200 images, calibration images) of the run, as the exporter sees them."""
    model, data, calibration = load_trained(run_dir, RECIPE)
    return model, np.concatenate([data.train.images, held_out_images(data)]), calibration


@pytest.fixture(scope="module")
def pipeline_bundle(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OpenVINO float32 bundle written by the export pipeline (with its parity checks)."""
    from edgecnn.export.pipeline import export_run

    return export_run(run_dir, "openvino", "float32", tmp_path_factory.mktemp("bundles")).bundle_dir


@pytest.fixture(scope="module")
def exported(trained, pipeline_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """precision → model.xml: float32 from the pipeline bundle, the others exported directly (no bundle.json)."""
    from edgecnn.export.openvino import export

    model, _, calibration = trained
    found = {"float32": pipeline_bundle / "model.xml"}
    for precision in ("float16", "int8"):
        found[precision] = export(model, precision, calibration, tmp_path_factory.mktemp(f"ov-{precision}"))
    return found


def keras_and_openvino(trained, model_path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Keras' and the OpenVINO runtime's probabilities on all 200 images, and the runtime's info()."""
    model, images, _ = trained
    predictor = load(model_path, threads=2)
    expected = model.predict(images.astype(np.float32), batch_size=256, verbose=0)
    return expected, predictor.predict(images), predictor.info()


@pytest.mark.parametrize(("precision", "max_abs_diff"), [("float32", 1e-4), ("float16", 1e-2)])
def test_float_irs_match_keras(trained, exported: dict[str, Path], precision: str, max_abs_diff: float) -> None:
    expected, received, info = keras_and_openvino(trained, exported[precision])
    assert received.shape == (200, 10) and received.dtype == np.float32
    assert np.abs(expected - received).max() <= max_abs_diff
    assert np.array_equal(expected.argmax(1), received.argmax(1))
    assert info["inference_precision"] == "f32"  # not the CPU's bf16/f16 default, whatever the machine


def test_int8_ir_is_quantised_and_agrees_with_keras(trained, exported: dict[str, Path]) -> None:
    from edgecnn.export.openvino import describe

    expected, received, info = keras_and_openvino(trained, exported["int8"])
    assert info["inference_precision"] == "f32"
    # Measured on these 200 images of a soft 10-class model: 100 % top-1 agreement, max |Δp| 0.13 (with NNCF's
    # fast bias correction it was 96 %). The bounds leave room for NNCF and kernel changes, not for that regression.
    assert np.mean(expected.argmax(1) == received.argmax(1)) >= 0.98
    assert np.abs(expected - received).max() <= 0.25
    facts = {precision: describe(path) for precision, path in exported.items()}
    assert facts["float32"]["fake_quantize_nodes"] == facts["float16"]["fake_quantize_nodes"] == 0
    assert facts["int8"]["fake_quantize_nodes"] >= 4  # both convolutions' inputs and weights at least
    assert facts["float32"]["ops"]["Convolution"] == 2 and facts["float32"]["ops"]["Softmax"] == 1
    weights = {precision: path.with_suffix(".bin").stat().st_size for precision, path in exported.items()}
    assert weights["int8"] < weights["float16"] < weights["float32"]


def test_export_is_deterministic(trained, exported: dict[str, Path], tmp_path: Path) -> None:
    from edgecnn.export.openvino import export

    model, _, calibration = trained
    again = export(model, "int8", calibration, tmp_path)  # conversion and calibration both
    assert again.with_suffix(".bin").read_bytes() == exported["int8"].with_suffix(".bin").read_bytes()
    # Auto-generated node names (Constant_683) come from a process-wide counter: a fresh process (the CLI) writes
    # identical bytes, a second export in the same process renumbers them.
    assert auto_names_masked(again) == auto_names_masked(exported["int8"])


def auto_names_masked(model_xml: Path) -> bytes:
    return re.sub(rb"_\d+\b", b"_#", model_xml.read_bytes())


def test_export_rejects_bad_arguments(trained, tmp_path: Path) -> None:
    from edgecnn.export.openvino import export

    model, _, _ = trained
    supported = r"format 'openvino' supports precisions float32, float16, int8; got 'dynamic'"
    with pytest.raises(ValueError, match=supported):
        export(model, "dynamic", None, tmp_path)
    with pytest.raises(ValueError, match=r"int8 export needs calibration images .* got none"):
        export(model, "int8", np.zeros((0, 16, 16, 3), np.uint8), tmp_path)


def test_pipeline_writes_a_checked_bundle_the_runtime_loads(pipeline_bundle: Path) -> None:
    manifest = json.loads((pipeline_bundle / "bundle.json").read_text())
    assert pipeline_bundle.name == "digits-ov-openvino-float32"
    assert sorted(p.name for p in pipeline_bundle.iterdir()) == ["bundle.json", "labels.txt", "model.bin", "model.xml"]
    assert manifest["model_file"] == "model.xml" and manifest["format"] == "openvino"
    parity = manifest["checks"]["parity"]
    assert parity["passed"] is True and parity["max_abs_prob_diff"] <= 1e-4 and parity["top1_agreement"] == 1.0
    assert manifest["checks"]["fake_quantize_nodes"] == 0 and manifest["checks"]["ops"]["Convolution"] == 2

    predictor = load(pipeline_bundle, threads=1)
    info = predictor.info()
    assert (info["backend"], info["device"], info["threads"], info["compiled_threads"]) == ("openvino", "CPU", 1, 1)
    assert (info["performance_hint"], info["inference_precision"]) == ("LATENCY", "f32")
    assert predictor.predict(np.zeros((3, 16, 16, 3), np.uint8)).shape == (3, 10)
    assert predictor.classify(np.zeros((40, 30, 3), np.uint8), top_k=1)[0][0] in predictor.labels


def test_corrupt_ir_is_a_bundle_error(exported: dict[str, Path], tmp_path: Path) -> None:
    model_xml = tmp_path / "model.xml"
    model_xml.write_text("<net>not an IR</wrong>\n")
    with pytest.raises(BundleError, match=r"model.xml: OpenVINO IR weights model.bin missing; expected them beside"):
        load(model_xml)
    model_xml.with_suffix(".bin").write_bytes(exported["float32"].with_suffix(".bin").read_bytes())
    with pytest.raises(BundleError, match=r"model.xml: not a valid OpenVINO IR model \(.+\)"):
        load(model_xml)


RUNTIME_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import edgecnn.runtime, edgecnn.runtime.backends.openvino
    predictor = edgecnn.runtime.load(sys.argv[1], threads=1)
    probabilities = predictor.predict(np.zeros((1, *predictor.image_size, 3), np.uint8))
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "nncf", "torch"))
    print(json.dumps({"imported": heavy, "backend": predictor.info()["backend"], "shape": list(probabilities.shape)}))
""")


def test_runtime_backend_imports_no_tensorflow(pipeline_bundle: Path) -> None:
    # No import blocker: TensorFlow is installed here, so any import of it would show up in sys.modules.
    result = subprocess.run(
        [sys.executable, "-c", RUNTIME_SCRIPT, str(pipeline_bundle)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"imported": [], "backend": "openvino", "shape": [1, 10]}


def test_conversion_runs_with_library_telemetry_declined(monkeypatch):
    """OpenVINO's converter sees telemetry declined during export, and the environment is restored after."""
    from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker

    from edgecnn.export.telemetry import telemetry_disabled

    monkeypatch.delenv("CI", raising=False)
    with telemetry_disabled():
        assert OptInChecker().check(enable_opt_in_dialog=False, disable_in_ci=True) == ConsentCheckResult.DECLINED
    assert "CI" not in os.environ


def test_squeeze_excite_blocks_are_quantised_only_within_the_export() -> None:
    # NNCF keeps SE blocks float through an ignored pattern; the export lifts it for its own nncf calls only.
    pytest.importorskip("nncf", reason="OpenVINO int8 export needs nncf")
    from nncf.common.graph.patterns.patterns import IgnoredPatternNames
    from nncf.openvino.quantization.ignored_patterns import OPENVINO_IGNORED_PATTERNS

    from edgecnn.export.openvino import squeeze_excite_quantised

    assert IgnoredPatternNames.SE_BLOCK in OPENVINO_IGNORED_PATTERNS.registry_dict
    with squeeze_excite_quantised() as lifted:
        assert lifted  # fails if NNCF moves its internals: the speed fix would silently stop applying
        assert IgnoredPatternNames.SE_BLOCK not in OPENVINO_IGNORED_PATTERNS.registry_dict
    assert IgnoredPatternNames.SE_BLOCK in OPENVINO_IGNORED_PATTERNS.registry_dict


def test_int8_export_quantises_squeeze_excite_convs(tmp_path, monkeypatch) -> None:
    from contextlib import nullcontext

    from edgecnn.export import openvino as openvino_export
    from edgecnn.models import create

    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = create("mobilenet_v3_small", num_classes=3, image_size=32)  # 9 squeeze-excite blocks
    # Non-zero biases, as after training: the converter drops zero-bias Adds, and NNCF's SE pattern needs them.
    rng = np.random.default_rng(0)
    for layer in model.get_layer(index=1).layers:
        if isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0.0, 0.1, bias.shape).astype(np.float32)])
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    (tmp_path / "lifted").mkdir()
    lifted = openvino_export.describe(openvino_export.export(model, "int8", images, tmp_path / "lifted"))
    monkeypatch.setattr(openvino_export, "squeeze_excite_quantised", lambda: nullcontext(False))
    (tmp_path / "default").mkdir()
    default = openvino_export.describe(openvino_export.export(model, "int8", images, tmp_path / "default"))
    # NNCF's default leaves each gate's two 1x1 convs (and their inputs) unquantised.
    assert lifted["fake_quantize_nodes"] > default["fake_quantize_nodes"]

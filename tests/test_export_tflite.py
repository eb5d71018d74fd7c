"""TFLite export options from the recipe: int8 bundles with uint8 (default) or int8 input and output."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from helpers import held_out_images, train_tiny_run

from edgecnn.config import RecipeError, parse_recipe
from edgecnn.runtime import load

RECIPE = {
    "name": "digits-tflite-io",
    "data": {"source": "builtin", "path": "digits", "image_size": 16, "max_per_class": 40,
             "val_fraction": 0.25, "test_fraction": 0.25},
    "model": {"name": "tiny_cnn", "dropout": 0.0},
    "train": {"epochs": 8, "batch_size": 16, "learning_rate": 0.01},
    "export": {"calibration_images": 100},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(RECIPE, tmp_path_factory.mktemp("runs"))


def _with_io(run_dir: Path, int8_io: str) -> Path:
    """The run, with its recorded recipe asking for `int8_io` (what a user's recipe section would say)."""
    recipe = copy.deepcopy(RECIPE)
    recipe["export"]["tflite"] = {"int8_io": int8_io}
    (run_dir / "recipe.yaml").write_text(parse_recipe(recipe).to_yaml())
    return run_dir


def test_int8_io_option_changes_only_the_interface(run_dir: Path, tmp_path: Path) -> None:
    from edgecnn.export.pipeline import export_run
    from edgecnn.train.runner import load_data

    unsigned = export_run(_with_io(run_dir, "uint8"), "tflite", "int8", tmp_path / "uint8")
    signed = export_run(_with_io(run_dir, "int8"), "tflite", "int8", tmp_path / "int8")
    # (Parity against Keras is the pipeline's own test; this ~90 %-accurate tiny model has near-ties at int8.)
    unsigned_predictor, signed_predictor = load(unsigned.bundle_dir), load(signed.bundle_dir)
    assert unsigned_predictor.info()["input_dtype"] == "uint8"
    assert signed_predictor.info()["input_dtype"] == "int8"
    assert signed_predictor.info()["output_dtype"] == "int8"
    # The same int8 graph between the interfaces: probabilities differ by at most one output step (1/256).
    images = held_out_images(load_data(parse_recipe(RECIPE)))
    difference = np.abs(unsigned_predictor.predict(images) - signed_predictor.predict(images))
    assert difference.max() <= 1 / 256 + 1e-6
    # With int8 I/O XNNPACK has no uint8<->int8 QUANTIZE ops left to hand back to LiteRT.
    assert "QUANTIZE" in unsigned.manifest.checks["xnnpack"]["undelegated"]
    assert "QUANTIZE" not in signed.manifest.checks["xnnpack"]["undelegated"]


def test_bad_int8_io_names_the_field() -> None:
    recipe = copy.deepcopy(RECIPE)
    recipe["export"]["tflite"] = {"int8_io": "int16"}
    with pytest.raises(RecipeError, match=r"export\.tflite\.int8_io"):
        parse_recipe(recipe)


def test_format_options_reach_only_their_format() -> None:
    recipe = copy.deepcopy(RECIPE)
    recipe["export"]["onnx"] = {"activation_type": "int8", "calibration_method": "entropy"}
    export = parse_recipe(recipe).export
    assert export.options("onnx") == {"activation_type": "int8", "calibration_method": "entropy", "reduce_range": True}
    assert export.options("tflite") == {"int8_io": "uint8"}
    assert export.options("openvino") == {}

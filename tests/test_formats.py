"""The format table and the modules that implement it agree: precisions, file names, options, backends, CLI."""

from __future__ import annotations

import inspect
import typing

import pytest

from edgecnn.config import parse_recipe
from edgecnn.errors import ExportError
from edgecnn.formats import ALL_PRECISIONS, CALIBRATED_PRECISIONS, FORMATS, check_target, format_of_model_file

MINIMAL = {"name": "x", "data": {"path": "p"}, "model": {"name": "tiny_cnn"}}


@pytest.mark.parametrize("name", FORMATS)
def test_exporter_implements_exactly_the_tables_precisions(name: str) -> None:
    spec = FORMATS[name]
    exporter = spec.load()
    assert set(exporter.CONVERSIONS) == set(spec.precisions)
    assert exporter.MODEL_FILE == spec.model_file
    parameters = inspect.signature(exporter.export).parameters
    assert list(parameters)[:4] == ["model", "precision", "calibration_images", "bundle_dir"]
    options = spec.options.model_fields if spec.options else {}
    assert set(options) <= set(parameters), f"{name}: recipe options the exporter does not take"


@pytest.mark.parametrize("name", FORMATS)
def test_backend_and_accuracy_modules_exist(name: str) -> None:
    spec = FORMATS[name]
    assert callable(spec.load_backend().open_model)
    assert format_of_model_file(f"bundle/{spec.model_file}") is spec
    for precision in spec.qat_precisions + spec.controlled_precisions:
        assert precision in spec.precisions
    if spec.controlled_precisions:
        accuracy = spec.load_accuracy()
        assert callable(accuracy.diagnose) and accuracy.REMEDIES


def test_parity_limits_cover_every_precision() -> None:
    from edgecnn.export.checks import THRESHOLDS

    assert set(THRESHOLDS) == set(ALL_PRECISIONS)
    assert set(CALIBRATED_PRECISIONS) <= set(ALL_PRECISIONS)


def test_recipe_has_one_options_section_per_format_with_options() -> None:
    export = parse_recipe(MINIMAL).export
    for name, spec in FORMATS.items():
        assert export.options(name) == (spec.options().model_dump() if spec.options else {})
    sections = {name for name in type(export).model_fields if name in FORMATS}
    assert sections == {name for name, spec in FORMATS.items() if spec.options}


def test_onnx_option_values_map_to_onnxruntime_names() -> None:
    from edgecnn.export import onnx
    from edgecnn.formats import ONNXOptions

    for field, table in (("activation_type", onnx.ACTIVATION_TYPES), ("calibration_method", onnx.CALIBRATION_METHODS)):
        assert set(typing.get_args(ONNXOptions.model_fields[field].annotation)) == set(table)


def test_cli_offers_the_tables_formats() -> None:
    from edgecnn.cli import build_parser

    parser = build_parser()
    export = parser._subparsers._group_actions[0].choices["export"]
    choices = next(action.choices for action in export._actions if action.dest == "format")
    assert list(choices) == [*FORMATS, "all"]


def test_unknown_targets_name_what_exists() -> None:
    with pytest.raises(ExportError, match="available: tflite, onnx, openvino"):
        check_target("coreml", "float32")
    with pytest.raises(ExportError, match="supports precisions float32, int8; got 'float16'"):
        check_target("onnx", "float16")

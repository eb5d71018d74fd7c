"""OpenVINO accuracy control: NNCF's own quantize_with_accuracy_control, which reverts the layers int8 hurts most to
float until the validation drop is within budget. TensorFlow Lite is never imported."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from edgecnn.export import openvino as openvino_export
from edgecnn.export.control import QuantisationInputs, Remedy
from edgecnn.export.telemetry import telemetry_disabled


def diagnose(inputs: QuantisationInputs) -> None:
    """None: NNCF ranks the layers itself inside quantize_with_accuracy_control."""
    return None


def _nncf_accuracy_control(inputs: QuantisationInputs, target: Path) -> tuple[Path, dict]:
    ov = openvino_export._openvino()
    with telemetry_disabled(), openvino_export.squeeze_excite_quantised():  # as the plain int8 export does
        import nncf

        validation = list(zip(inputs.validation.images, inputs.validation.labels))
        quantized = nncf.quantize_with_accuracy_control(
            openvino_export.convert(inputs.model),
            nncf.Dataset(list(inputs.calibration), openvino_export.model_input),
            nncf.Dataset(validation, lambda item: openvino_export.model_input(item[0])),
            _top1,
            max_drop=inputs.max_drop / 100, drop_type=nncf.DropType.ABSOLUTE,
            **openvino_export.nncf_settings(nncf), subset_size=len(inputs.calibration),
        )
    path = Path(target) / openvino_export.MODEL_FILE
    ov.save_model(quantized, str(path), compress_to_fp16=False)
    return path, {}


def _top1(compiled_model, validation: Iterable[tuple[np.ndarray, int]]) -> tuple[float, list[float]]:
    """NNCF validation_fn: top-1 accuracy (the metric max_drop is in) and each image's correctness."""
    correct = [
        float(np.argmax(compiled_model(openvino_export.model_input(image))[0]) == label) for image, label in validation
    ]
    return float(np.mean(correct)), correct


REMEDIES: tuple[Remedy, ...] = (
    Remedy("nncf_accuracy_control", "int8", "nncf.quantize_with_accuracy_control on the validation split: layers "
           "back to float, most harmful first, until within max_drop", _nncf_accuracy_control),
)

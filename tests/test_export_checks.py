"""Export verdicts: probability parity for float precisions, a validation accuracy budget for quantised ones."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.export.checks import AGREEMENT_WARNING, BUDGETED_PRECISIONS, DEFAULT_MAX_DROP, parity_checks


def _probs(top1: np.ndarray, classes: int = 4, confidence: float = 0.7) -> np.ndarray:
    probs = np.full((len(top1), classes), (1 - confidence) / (classes - 1), np.float32)
    probs[np.arange(len(top1)), top1] = confidence
    return probs


def _case(agree: int, export_right: int, n: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras right on 900 of n images; the export flips `n - agree` predictions and is right on `export_right`."""
    labels = np.zeros(n, np.int64)
    keras_top1 = np.where(np.arange(n) < 900, 0, 1)
    export_top1 = keras_top1.copy()
    flips = n - agree
    # Flip `gained` wrong→right and the rest right→wrong so the export ends right on `export_right` images.
    gained = (flips + export_right - 900) // 2
    lost = flips - gained
    export_top1[900:900 + gained] = 0
    export_top1[:lost] = 2
    assert int(np.sum(export_top1 == keras_top1)) == agree and int(np.sum(export_top1 == labels)) == export_right
    return _probs(keras_top1), _probs(export_top1), labels


@pytest.mark.parametrize("precision", BUDGETED_PRECISIONS)
def test_quantised_low_agreement_within_budget_passes_with_warning(precision):
    # 97.4 % agreement (the Fashion-MNIST int8 case) but only 0.4 points below Keras: what users care about.
    keras, export, labels = _case(agree=974, export_right=896)
    parity = parity_checks(keras, export, labels, precision)
    assert parity["top1_agreement"] == pytest.approx(0.974) and parity["top1_drop_points"] == pytest.approx(0.4)
    assert parity["passed"] is True and parity["limits"] == {"max_drop_points": DEFAULT_MAX_DROP}
    assert len(parity["warnings"]) == 1 and "97.4%" in parity["warnings"][0]


@pytest.mark.parametrize("precision", BUDGETED_PRECISIONS)
def test_quantised_over_budget_fails(precision):
    # Every flip a loss: 99.0 % agreement is 1.0 point down (at the budget), 98.8 % is 1.2 points (over it).
    at_budget = parity_checks(*_case(agree=990, export_right=890), precision)
    over = parity_checks(*_case(agree=988, export_right=888), precision)
    assert at_budget["passed"] is True and at_budget["warnings"] == []
    assert over["passed"] is False and over["top1_drop_points"] == pytest.approx(1.2)
    assert over["top1_agreement"] < AGREEMENT_WARNING and len(over["warnings"]) == 1


def test_budget_comes_from_max_drop():
    case = _case(agree=980, export_right=890)  # drop 1.0 point
    assert parity_checks(*case, "int8", max_drop=0.5)["passed"] is False
    assert parity_checks(*case, "int8", max_drop=1.5)["passed"] is True
    assert parity_checks(*case, "int8", max_drop=0.5)["limits"] == {"max_drop_points": 0.5}


def test_float_precisions_keep_probability_parity():
    keras, _, labels = _case(agree=1000, export_right=900)
    assert parity_checks(keras, keras + 5e-5, labels, "float32")["passed"] is True
    assert parity_checks(keras, keras + 2e-4, labels, "float32")["passed"] is False  # same top-1, |Δp| over 1e-4
    assert parity_checks(keras, keras + 5e-3, labels, "float16")["passed"] is True
    assert parity_checks(keras, keras + 2e-2, labels, "float16")["passed"] is False
    # A float export that flips predictions fails however little accuracy moves; max_drop does not apply to it.
    flipped = parity_checks(*_case(agree=990, export_right=900), "float16", max_drop=5.0)
    assert flipped["passed"] is False and flipped["rule"] == "probability parity"

"""Accuracy control: keep an int8 export only if its validation top-1 is within budget, else try remedies.

Each format's accuracy module (named by the format table) provides `diagnose(inputs)` — what int8 hurts, or None
where the format's remedies diagnose for themselves — and `REMEDIES`, what its conversion library offers, cheapest
and most int8 first. This loop tries them through `attempt`, a function of the pipeline that builds a complete
bundle in a scratch directory and checks it; the first within budget is kept. Only the pipeline writes bundles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import numpy as np

from edgecnn.data import ImageSet
from edgecnn.data.calibration import CalibrationSample
from edgecnn.errors import AccuracyBudgetError, ExportError
from edgecnn.formats import get_format
from edgecnn.runtime.bundle import Manifest


@dataclass(frozen=True)
class QuantisationInputs:
    """What a remedy may re-quantise from: the Keras model, calibration images, the split the budget is on."""

    model: object
    calibration: np.ndarray
    calibration_sample: CalibrationSample  # for remedies that calibrate on more images
    validation: ImageSet
    options: dict = field(default_factory=dict)  # the recipe's export options for this format (e.g. int8_io)
    max_drop: float | None = None  # validation top-1 points
    diagnosis: tuple[dict, ...] = ()  # the format's diagnose() rows, worst first


@dataclass(frozen=True)
class Remedy:
    """One remedy a conversion library offers: it writes a model file into a bundle dir and returns facts."""

    name: str
    precision: str  # the precision the bundle records: a fallback may leave int8 (int16x8)
    description: str
    export: Callable[[QuantisationInputs, Path], tuple[Path, dict]]  # → model file written into the dir, facts


@dataclass(frozen=True)
class Kept:
    """The outcome: the remedy whose bundle to keep (None: the requested export) and its manifest, checks filled."""

    remedy: Remedy | None
    manifest: Manifest


# attempt(remedy, inputs) → the checked manifest of a bundle built from that remedy, and the facts it reported.
Attempt = Callable[[Remedy, QuantisationInputs], tuple[Manifest, dict]]


def budget(format_name: str, precision: str, max_drop: float | None) -> float | None:
    """The budget that applies to this export: None when unset or for precisions the format does not control."""
    spec = get_format(format_name)
    if max_drop is None or precision not in spec.controlled_precisions:
        return None
    if spec.accuracy is None:
        raise ExportError(f"accuracy control (max_drop={max_drop}) has no remedies for format {format_name!r}")
    return max_drop


def control(first: Manifest, attempt: Attempt, inputs: QuantisationInputs, max_drop: float) -> Kept:
    """Keep `first` if its top-1 drop is within `max_drop` points, else the first remedy's bundle that is.

    Records the diagnosis and every attempt in the kept manifest's checks["accuracy_control"]; raises
    AccuracyBudgetError with the table of attempts if no remedy meets the budget.
    """
    attempts = [_row("baseline", first.precision, "the requested export", first, max_drop, {})]
    record: dict = {"max_drop_points": max_drop, "requested_precision": first.precision, "attempts": attempts}
    if attempts[0]["meets_budget"]:
        return _keep(None, first, record)
    accuracy = get_format(first.format).load_accuracy()
    inputs = replace(inputs, max_drop=max_drop, diagnosis=_diagnose(accuracy, inputs, record))
    for remedy in accuracy.REMEDIES:
        try:
            manifest, facts = attempt(remedy, inputs)
        except Exception as exc:  # a converter refusing one remedy (an op without a kernel) is a result
            attempts.append({"strategy": remedy.name, "precision": remedy.precision,
                             "description": remedy.description, "meets_budget": False,
                             "error": f"{type(exc).__name__}: {exc}"[:500]})
            continue
        attempts.append(_row(remedy.name, remedy.precision, remedy.description, manifest, max_drop, facts))
        if attempts[-1]["meets_budget"]:
            return _keep(remedy, manifest, record)
    worst = ", ".join(
        f"{layer.get('keras_layer') or layer['tensor']} ({layer['noise_to_signal']:.2f})"
        for layer in record.get("diagnosis", [])[:3]
    )
    raise AccuracyBudgetError(
        f"{first.name}: no export kept validation top-1 within {max_drop} points of Keras; tried:\n"
        + attempts_table(attempts) + (f"\nworst int8 layers: {worst}" if worst else "")
    )


def _diagnose(accuracy: ModuleType, inputs: QuantisationInputs, record: dict) -> tuple[dict, ...]:
    found = accuracy.diagnose(inputs)
    if found is None:
        return ()
    record["diagnosis"], record["diagnosis_by"] = found["layers"], found["by"]
    return tuple(found["layers"])


def _keep(remedy: Remedy | None, manifest: Manifest, record: dict) -> Kept:
    record["kept"] = record["attempts"][-1]["strategy"]
    if "calibration_images" in record["attempts"][-1]:
        manifest.checks["calibration_images"] = record["attempts"][-1]["calibration_images"]
    manifest.checks["accuracy_control"] = record
    return Kept(remedy, manifest)


def _row(name: str, precision: str, description: str, manifest: Manifest, max_drop: float, facts: dict) -> dict:
    drop = manifest.checks["parity"]["top1_drop_points"]
    return {
        "strategy": name, "precision": precision, "description": description, "top1_drop_points": drop,
        "export_top1": manifest.checks["parity"]["export_top1"], "size_bytes": manifest.size_bytes,
        "meets_budget": bool(drop <= max_drop), **facts,
    }


def attempts_table(attempts: list[dict]) -> str:
    """The attempts as aligned text rows: strategy, precision, top-1 drop, size, verdict."""
    lines = [f"  {'strategy':<24} {'precision':<9} {'drop pt':>8} {'size KB':>8}  verdict"]
    for row in attempts:
        head = f"  {row['strategy']:<24} {row['precision']:<9}"
        if "error" in row:
            lines.append(f"{head} {'-':>8} {'-':>8}  failed: {row['error'].splitlines()[0]}")
            continue
        verdict = "within budget" if row["meets_budget"] else "over budget"
        lines.append(f"{head} {row['top1_drop_points']:>+8.2f} {row['size_bytes'] / 1e3:>8.1f}  {verdict}")
    return "\n".join(lines)


def noise_to_signal(reference: Iterable[np.ndarray], received: Iterable[np.ndarray]) -> float:
    """RMSE of `received` against `reference` over the reference's standard deviation (tensor lists, same shapes).

    Unlike a signal-to-noise ratio over the tensor's norm, a constant offset (logits around 1000) adds no signal.
    """
    reference = np.concatenate([np.ravel(np.asarray(tensor, np.float64)) for tensor in reference])
    received = np.concatenate([np.ravel(np.asarray(tensor, np.float64)) for tensor in received])
    return float(np.sqrt(np.mean((received - reference) ** 2)) / max(float(np.std(reference)), 1e-12))

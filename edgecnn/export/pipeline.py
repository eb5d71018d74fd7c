"""Run directory → verified bundle: convert, reload through the device runtime, check, write atomically.

Export reads only the run directory: the model, labels, recipe, and the calibration sample and check images train
stored there. Runs made before those were stored fall back to re-reading the data the recipe names.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from edgecnn import __version__, atomic
from edgecnn.config import Recipe
from edgecnn.data import load_splits
from edgecnn.data.calibration import LARGER_CALIBRATION_FACTOR, calibration_sample
from edgecnn.errors import RunDirError
from edgecnn.export import control, embedding
from edgecnn.export.backend import require_tensorflow_backend
from edgecnn.export.checks import keras_probabilities, parity_checks, runtime_probabilities
from edgecnn.formats import CALIBRATED_PRECISIONS, FormatSpec, check_target
from edgecnn.models import get as get_model
from edgecnn.run_dir import ExportInputs, RunDir, open_run
from edgecnn.runtime import load
from edgecnn.runtime.bundle import Manifest, new_manifest, write_manifest


@dataclass(frozen=True)
class ExportResult:
    bundle_dir: Path
    manifest: Manifest

    @property
    def passed(self) -> bool:
        return bool(self.manifest.checks.get("parity", {}).get("passed", False))

    def summary(self) -> str:
        if self.manifest.task == "embed":
            return embedding.summary(self.manifest) + self._delegation_summary()
        parity = self.manifest.checks["parity"]
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"{self.manifest.format} {self.manifest.precision}: {self.manifest.size_bytes / 1e6:.2f} MB, "
            f"val top-1 {parity['export_top1']:.2%} (Keras {parity['keras_top1']:.2%}, "
            f"drop {parity['top1_drop_points']:+.2f} pt), agreement {parity['top1_agreement']:.2%}, "
            f"max |Δp| {parity['max_abs_prob_diff']:.1e} — checks {verdict}"
            + self._accuracy_control_summary()
            + "".join(f"\n  warning: {warning}" for warning in parity.get("warnings", []))
            + self._delegation_summary()
        )

    def _delegation_summary(self) -> str:
        report = self.manifest.checks.get("xnnpack")
        if report is None:
            return ""
        left = ", ".join(f"{op} ×{n}" for op, n in report["undelegated"].items()) or "none"
        return (
            f"\n  XNNPACK: {report['delegated']}/{report['ops']} ops delegated in {report['partitions']} "
            f"partition(s); not delegated: {left}"
        )

    def _accuracy_control_summary(self) -> str:
        record = self.manifest.checks.get("accuracy_control")
        if record is None:
            return ""
        return f"; within {record['max_drop_points']} pt by {record['kept']} ({len(record['attempts'])} tried)"


@dataclass(frozen=True)
class ExportJob:
    """Everything one export reads from the run directory."""

    run: RunDir
    recipe: Recipe
    labels: list[str]
    spec: FormatSpec
    precision: str
    model: object  # what the converter gets
    reference: object  # what parity is checked against (the fake-quantised model for a QAT export)
    model_file: Path  # the run's file they come from
    inputs: ExportInputs
    calibration: np.ndarray
    options: dict
    max_drop: float | None  # accuracy control's budget (None: no control for this format/precision)
    verdict_max_drop: float | None = None  # the pass/fail budget of quantised precisions (None: checks' default)
    task: str = "classify"  # or "embed": the backbone + pooling + L2 norm (edgecnn.export.embedding)
    embedding_size: int | None = None


def export_run(
    run_path: str | Path,
    format_name: str = "tflite",
    precision: str = "float32",
    out_root: str | Path = "bundles",
    calibration_count: int | None = None,
    max_drop: float | None = None,
    task: str = "classify",
) -> ExportResult:
    """Export a finished run to out_root/<recipe>-<format>-<precision>/ and record parity and accuracy checks.

    `max_drop` (validation top-1 points, default: the recipe's export.max_drop) turns on accuracy control.
    `task="embed"` exports the backbone as an embedder to out_root/<recipe>-embed-<format>-<precision>/.
    """
    spec = check_target(format_name, precision)
    require_tensorflow_backend()
    job = read_job(open_run(run_path), spec, precision, calibration_count, max_drop)
    if task == "embed":
        job = embedding.embedding_job(job, load_keras_model(job.run.model))
    stem = job.recipe.name if task == "classify" else f"{job.recipe.name}-{task}"
    bundle_dir = Path(out_root) / f"{stem}-{spec.name}-{precision}"
    build = partial(_build_bundle, job, keras_probabilities(job.reference, job.inputs.check), bundle_dir.name)
    with atomic.temporary_sibling(bundle_dir) as tmp:
        exporter = spec.load()
        manifest = build(
            tmp, lambda target: exporter.export(job.model, precision, job.calibration, target, **job.options), precision
        )
        if job.max_drop is not None:
            manifest = _accuracy_control(job, build, manifest, tmp)
    result = ExportResult(bundle_dir, manifest)
    print(result.summary())
    return result


def read_job(
    run: RunDir, spec: FormatSpec, precision: str, calibration_count: int | None, max_drop: float | None
) -> ExportJob:
    """Read what exporting `run` to (spec, precision) needs; fails before any slow conversion."""
    recipe = run.read_recipe()
    labels = run.read_labels()
    model, reference, model_file = _models(run, recipe, spec, precision)
    count = calibration_count or recipe.export.calibration_images
    inputs = _export_inputs(run, recipe, labels, count)
    return ExportJob(
        run=run, recipe=recipe, labels=labels, spec=spec, precision=precision, model=model, reference=reference,
        model_file=model_file, inputs=inputs, calibration=inputs.calibration.take(count),
        options=recipe.export.options(spec.name),  # the recipe's export.<format> section, e.g. int8_io
        max_drop=control.budget(spec.name, precision, recipe.export.max_drop if max_drop is None else max_drop),
        verdict_max_drop=recipe.export.max_drop if max_drop is None else max_drop,
    )


def _export_inputs(run: RunDir, recipe: Recipe, labels: list[str], count: int) -> ExportInputs:
    """The run's stored calibration sample and check images; re-read from the data for runs that lack them."""
    if run.has_export_inputs():
        return run.read_export_inputs()
    print(f"{run.root} stores no calibration sample (trained before edgecnn stored it): re-reading its data")
    data = load_splits(**recipe.data_settings())
    if data.class_names != labels:
        raise RunDirError(f"{run.root}: labels.txt {labels} do not match the data's classes {data.class_names}")
    needed = LARGER_CALIBRATION_FACTOR * max(count, recipe.export.calibration_images)
    check_split = "val" if len(data.val) else "test"
    return ExportInputs(calibration_sample(data.train, needed, recipe.train.seed), getattr(data, check_split),
                        check_split)


def _models(run: RunDir, recipe: Recipe, spec: FormatSpec, precision: str) -> tuple[object, object, Path]:
    """(model to convert, model the bundle's parity is checked against, the run's file they come from).

    A run with a quantisation-aware fine-tuned model exports the format's QAT precisions from it: the converter gets
    it without its fake-quantisers, and parity is checked against the fake-quantised model, whose int8 emulation
    it should match. Every other format and precision converts model.keras.
    """
    if precision not in spec.qat_precisions or not recipe.qat.enabled:
        model = load_keras_model(run.model)
        return model, model, run.model
    if not run.model_qat.is_file():
        raise RunDirError(f"{run.root}: the recipe enables qat but {run.model_qat.name} is missing; train it again")
    from edgecnn.quant import strip_qat  # also registers the QAT layers for deserialisation

    qat_model = load_keras_model(run.model_qat)
    return strip_qat(qat_model), qat_model, run.model_qat


def load_keras_model(path: Path):
    """A run's .keras file, or a RunDirError when it is not a Keras archive (truncated, replaced, corrupt)."""
    import zipfile

    import keras

    if not zipfile.is_zipfile(path):
        raise RunDirError(f"{path}: not a Keras model archive (truncated or corrupt); train the run again")
    try:
        return keras.saving.load_model(path, compile=False)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise RunDirError(f"{path}: cannot be loaded ({type(exc).__name__}: {exc}); train the run again") from exc


def _build_bundle(
    job: ExportJob, keras_probs: np.ndarray, name: str, target: Path, export_model: Callable[[Path], Path],
    precision: str,
) -> Manifest:
    """Export into a new dir `target`, reload it through the device runtime and record its checks."""
    target.mkdir()
    model_path = export_model(target)
    recipe = job.recipe
    manifest = new_manifest(
        name=name, format_name=job.spec.name, precision=precision, model_path=model_path, labels=job.labels,
        image_size=(recipe.data.image_size, recipe.data.image_size), resize=recipe.data.resize,
        normalisation=get_model(recipe.model.name).normalisation,
        source={
            "run": str(job.run.root), "recipe": recipe.name, "model": recipe.model.name,
            "data": recipe.data_settings(), "model_file": job.model_file.name, "qat": job.model_file != job.run.model,
        },
        edgecnn_version=__version__, task=job.task, embedding_size=job.embedding_size,
    )
    write_manifest(target, manifest)
    check = job.inputs.check
    if job.task == "embed":
        parity = embedding.embedding_parity(keras_probs, load(target), check, precision)
    else:
        parity = parity_checks(
            keras_probs, runtime_probabilities(load(target), check), check.labels, precision, job.verdict_max_drop
        )
    describe = getattr(job.spec.load(), "describe", None)
    manifest.checks = {
        "parity": parity,
        "calibration_images": int(len(job.calibration)) if precision in CALIBRATED_PRECISIONS else 0,
        "check_split": job.inputs.check_split,
        **(describe(model_path) if describe else {}),
    }
    write_manifest(target, manifest)
    return manifest


def _accuracy_control(job: ExportJob, build: Callable, first: Manifest, bundle: Path) -> Manifest:
    """Run the control loop with attempts built in a scratch dir; move the kept attempt into `bundle`."""
    inputs = control.QuantisationInputs(
        job.model, job.calibration, job.inputs.calibration, job.inputs.check, options=job.options
    )
    with tempfile.TemporaryDirectory(prefix=".attempts-", dir=bundle.parent) as scratch:

        def attempt(remedy: control.Remedy, inputs: control.QuantisationInputs) -> tuple[Manifest, dict]:
            facts: dict = {}

            def export(directory: Path) -> Path:
                path, found = remedy.export(inputs, directory)
                facts.update(found)
                return path

            return build(Path(scratch) / remedy.name, export, remedy.precision), facts

        kept = control.control(first, attempt, inputs, job.max_drop)
        if kept.remedy is not None:
            shutil.rmtree(bundle)
            shutil.move(str(Path(scratch) / kept.remedy.name), str(bundle))
        write_manifest(bundle, kept.manifest)
    return kept.manifest

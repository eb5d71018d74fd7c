"""Run directory → verified bundle: convert, reload through the device runtime, check, write atomically."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgecnn import __version__, atomic
from edgecnn.export import accuracy
from edgecnn.export.backend import require_tensorflow_backend
from edgecnn.export.calibration import CALIBRATED_PRECISIONS, calibration_images
from edgecnn.export.checks import keras_probabilities, parity_checks, runtime_probabilities
from edgecnn.export.formats import check_target, get_format
from edgecnn.models import get as get_model
from edgecnn.run_dir import RunDir, open_run
from edgecnn.runtime import load
from edgecnn.runtime.bundle import Manifest, write_manifest


@dataclass(frozen=True)
class ExportResult:
    bundle_dir: Path
    manifest: Manifest

    @property
    def passed(self) -> bool:
        return bool(self.manifest.checks.get("parity", {}).get("passed", False))

    def summary(self) -> str:
        parity = self.manifest.checks["parity"]
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"{self.manifest.format} {self.manifest.precision}: {self.manifest.size_bytes / 1e6:.2f} MB, "
            f"val top-1 {parity['export_top1']:.2%} (Keras {parity['keras_top1']:.2%}, "
            f"drop {parity['top1_drop_points']:+.2f} pt), agreement {parity['top1_agreement']:.2%}, "
            f"max |Δp| {parity['max_abs_prob_diff']:.1e} — checks {verdict}"
            + self._accuracy_control_summary()
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
        control = self.manifest.checks.get("accuracy_control")
        if control is None:
            return ""
        return f"; within {control['max_drop_points']} pt by {control['kept']} ({len(control['attempts'])} tried)"


def export_run(
    run_path: str | Path,
    format_name: str = "tflite",
    precision: str = "float32",
    out_root: str | Path = "bundles",
    calibration_count: int | None = None,
    max_drop: float | None = None,
) -> ExportResult:
    """Export a finished run to out_root/<recipe>-<format>-<precision>/ and record parity and accuracy checks.

    `max_drop` (validation top-1 points, default: the recipe's export.max_drop) turns on accuracy control.
    """
    check_target(format_name, precision)
    require_tensorflow_backend()
    from edgecnn.train.runner import load_data

    run = open_run(run_path)
    recipe = run.read_recipe()
    labels = run.read_labels()
    model, reference, model_file = _export_model(run, recipe, format_name, precision)
    data = load_data(recipe)
    if data.class_names != labels:
        raise ValueError(f"{run.root}: labels.txt {labels} do not match the data's classes {data.class_names}")
    max_drop = accuracy.budget(format_name, precision, recipe.export.max_drop if max_drop is None else max_drop)
    count = calibration_count or recipe.export.calibration_images
    calibration = calibration_images(data.train, count, seed=recipe.train.seed)
    check_set = data.val if len(data.val) else data.test

    spec = get_format(format_name)
    bundle_dir = Path(out_root) / f"{recipe.name}-{format_name}-{precision}"
    keras_probs = keras_probabilities(reference, check_set)

    def build(target: Path, export_model: Callable[[Path], Path], built_precision: str) -> Manifest:
        """Export into a new dir `target`, reload it through the device runtime and record its checks."""
        target.mkdir()
        model_path = export_model(target)
        manifest = Manifest(
            name=bundle_dir.name,
            format=format_name,
            precision=built_precision,
            model_file=model_path.name,
            labels=labels,
            input={"height": recipe.data.image_size, "width": recipe.data.image_size},
            preprocessing={"resize": recipe.data.resize, "normalisation": get_model(recipe.model.name).normalisation},
            source={**_source(run, recipe), "model_file": model_file.name, "qat": model_file != run.model},
            size_bytes=sum(path.stat().st_size for path in _model_files(model_path)),
            edgecnn_version=__version__,
        )
        write_manifest(target, manifest)
        parity = parity_checks(
            keras_probs, runtime_probabilities(load(target), check_set), check_set.labels, built_precision
        )
        describe = getattr(spec.load(), "describe", None)
        manifest.checks = {
            "parity": parity,
            "calibration_images": int(len(calibration)) if built_precision in CALIBRATED_PRECISIONS else 0,
            "check_split": "val" if len(data.val) else "test",
            **(describe(model_path) if describe else {}),
        }
        write_manifest(target, manifest)
        return manifest

    options = recipe.export.options(format_name)  # the recipe's export.<format> section, e.g. int8_io
    with atomic.temporary_sibling(bundle_dir) as tmp:
        manifest = build(
            tmp, lambda target: spec.load().export(model, precision, calibration, target, **options), precision
        )
        if max_drop is not None:
            inputs = accuracy.QuantisationInputs(
                model, calibration, data.train, check_set, recipe.train.seed, options=options
            )
            manifest = accuracy.control(manifest, tmp, build, inputs, max_drop)
    result = ExportResult(bundle_dir, manifest)
    print(result.summary())
    return result


def _model_files(model_path: Path) -> list[Path]:
    """The model file and its weights sidecar, if the format has one (OpenVINO IR: model.xml + model.bin)."""
    weights = model_path.with_suffix(".bin")
    return [model_path, weights] if weights != model_path and weights.is_file() else [model_path]


def _export_model(run: RunDir, recipe, format_name: str, precision: str):
    """(model to convert, model the bundle's parity is checked against, the run's file they come from).

    A run with a quantisation-aware fine-tuned model exports int8 TFLite from it: the converter gets it without its
    fake-quantisers, and parity is checked against the fake-quantised model, whose int8 emulation it should match.
    Every other format and precision converts model.keras.
    """
    import keras

    model_file = run.model_qat
    if (format_name, precision) != ("tflite", "int8") or not recipe.qat.enabled:
        model = keras.saving.load_model(run.model, compile=False)
        return model, model, run.model
    if not model_file.is_file():
        raise FileNotFoundError(
            f"{run.root}: the recipe enables qat but {model_file.name} is missing; train the run again"
        )
    from edgecnn.train.qat import strip_qat

    qat_model = keras.saving.load_model(model_file, compile=False)
    return strip_qat(qat_model), qat_model, model_file


def _source(run: RunDir, recipe) -> dict:
    from edgecnn.train.runner import data_arguments

    return {"run": str(run.root), "recipe": recipe.name, "model": recipe.model.name, "data": data_arguments(recipe)}



"""Run directory → verified bundle: convert, reload through the device runtime, check, write atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgecnn import __version__, atomic
from edgecnn.export.backend import require_tensorflow_backend
from edgecnn.export.calibration import calibration_images
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
        )


def export_run(
    run_path: str | Path,
    format_name: str = "tflite",
    precision: str = "float32",
    out_root: str | Path = "bundles",
    calibration_count: int | None = None,
) -> ExportResult:
    """Export a finished run to out_root/<recipe>-<format>-<precision>/ and record parity and accuracy checks."""
    check_target(format_name, precision)
    require_tensorflow_backend()
    import keras

    from edgecnn.train.runner import load_data

    run = open_run(run_path)
    recipe = run.read_recipe()
    labels = run.read_labels()
    model = keras.saving.load_model(run.model, compile=False)
    data = load_data(recipe)
    if data.class_names != labels:
        raise ValueError(f"{run.root}: labels.txt {labels} do not match the data's classes {data.class_names}")
    count = calibration_count or recipe.export.calibration_images
    calibration = calibration_images(data.train, count, seed=recipe.train.seed)
    check_set = data.val if len(data.val) else data.test

    spec = get_format(format_name)
    bundle_dir = Path(out_root) / f"{recipe.name}-{format_name}-{precision}"
    with atomic.temporary_sibling(bundle_dir) as tmp:
        tmp.mkdir()
        model_path = spec.load().export(model, precision, calibration, tmp)
        manifest = Manifest(
            name=bundle_dir.name,
            format=format_name,
            precision=precision,
            model_file=model_path.name,
            labels=labels,
            input={"height": recipe.data.image_size, "width": recipe.data.image_size},
            preprocessing={"resize": recipe.data.resize, "normalisation": get_model(recipe.model.name).normalisation},
            source=_source(run, recipe),
            size_bytes=model_path.stat().st_size,
            edgecnn_version=__version__,
        )
        write_manifest(tmp, manifest)
        predictor = load(tmp)
        parity = parity_checks(
            keras_probabilities(model, check_set), runtime_probabilities(predictor, check_set),
            check_set.labels, precision,
        )
        describe = getattr(spec.load(), "describe", None)
        manifest.checks = {
            "parity": parity,
            "calibration_images": int(len(calibration)) if precision == "int8" else 0,
            "check_split": "val" if len(data.val) else "test",
            **(describe(model_path) if describe else {}),
        }
        write_manifest(tmp, manifest)
    result = ExportResult(bundle_dir, manifest)
    print(result.summary())
    return result


def _source(run: RunDir, recipe) -> dict:
    from edgecnn.train.runner import data_arguments

    return {"run": str(run.root), "recipe": recipe.name, "model": recipe.model.name, "data": data_arguments(recipe)}



"""Layout of a training run directory: one place that names every artifact train writes and export reads.

Besides the model, a run holds what export needs so that it never re-reads the raw images: the split it was trained
on (`split.json`: data settings, class names, sizes), a calibration sample (`calibration.npz`) and the images the
export checks run on (`check_images.npz`, the validation split, or test when there is none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn import atomic
from edgecnn.config import Recipe, load_recipe
from edgecnn.data import DataSplits, ImageSet
from edgecnn.data.calibration import CalibrationSample
from edgecnn.data.stream import MB, in_memory_sample
from edgecnn.errors import RunDirError

# A streamed split's check images are a sample of at most this share of data.cache_budget_mb: about what a set that
# fits the budget stores for its validation split at the default val_fraction.
CHECK_SAMPLE_SHARE = 0.1


@dataclass(frozen=True)
class ExportInputs:
    """What export reads from a run besides the model: calibration sample and the split its checks run on."""

    calibration: CalibrationSample
    check: ImageSet
    check_split: str


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def model_qat(self) -> Path:
        """The quantisation-aware fine-tuned model, written when the recipe enables qat (int8 TFLite uses it)."""
        return self.root / "model_qat.keras"

    @property
    def labels(self) -> Path:
        return self.root / "labels.txt"

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def skipped(self) -> Path:
        return self.root / "skipped.txt"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def calibration(self) -> Path:
        return self.root / "calibration.npz"

    @property
    def check_images(self) -> Path:
        return self.root / "check_images.npz"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def is_complete(self) -> bool:
        return self.model.is_file() and self.metrics.is_file()

    def read_labels(self) -> list[str]:
        return self.labels.read_text(encoding="utf-8").splitlines()

    def read_recipe(self) -> Recipe:
        return load_recipe(self.recipe)

    def has_export_inputs(self) -> bool:
        """Whether the run stores its export inputs (runs trained before edgecnn 0.2 do not)."""
        return self.calibration.is_file() and self.check_images.is_file()

    def write_export_inputs(self, recipe: Recipe, data: DataSplits, calibration: CalibrationSample) -> None:
        """Record the split and store the calibration sample and check images, each file atomically."""
        check_split = "val" if len(data.val) else "test"
        budget = int(CHECK_SAMPLE_SHARE * recipe.data.cache_budget_mb * MB)
        check = in_memory_sample(getattr(data, check_split), budget, recipe.train.seed)
        atomic.write_json(self.split, {
            "data": recipe.data_settings(),
            "source": data.source,
            "class_names": data.class_names,
            "sizes": {split: len(getattr(data, split)) for split in ("train", "val", "test")},
            "check_split": check_split,
            "check_images": len(check),  # all of the split, or a class-stratified sample of a streamed one
        })
        with atomic.temporary_sibling(self.calibration) as tmp:
            calibration.save(tmp)
        with atomic.temporary_sibling(self.check_images) as tmp:
            np.savez_compressed(tmp, images=check.images, labels=check.labels, split=np.str_(check_split))

    def read_export_inputs(self) -> ExportInputs:
        """The stored export inputs, checked against labels.txt."""
        labels = self.read_labels()
        calibration = CalibrationSample.load(self.calibration)
        with np.load(self.check_images, allow_pickle=False) as npz:
            check = ImageSet(npz["images"], npz["labels"], labels)
            check_split = str(npz["split"])
        if calibration.num_classes != len(labels):
            raise RunDirError(
                f"{self.calibration}: sample of {calibration.num_classes} classes, but labels.txt has {len(labels)}"
            )
        return ExportInputs(calibration, check, check_split)

    def read_split(self) -> dict[str, Any]:
        return json.loads(self.split.read_text(encoding="utf-8"))


def open_run(path: str | Path) -> RunDir:
    """A finished run directory, or a clear error saying what is missing."""
    run = RunDir(Path(path))
    if not run.root.is_dir():
        raise RunDirError(f"run directory {run.root} not found; train one with `edgecnn train RECIPE`")
    missing = [p.name for p in (run.model, run.labels, run.recipe) if not p.is_file()]
    if missing:
        raise RunDirError(
            f"{run.root} is not a finished run (missing {', '.join(missing)}); "
            "an interrupted run resumes when you run `edgecnn train` with the same recipe again"
        )
    return run

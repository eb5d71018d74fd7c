"""Layout of a training run directory: one place that names every artifact train writes and export reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgecnn.config import Recipe, RecipeError, load_recipe


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


def open_run(path: str | Path) -> RunDir:
    """A finished run directory, or a clear error saying what is missing."""
    run = RunDir(Path(path))
    if not run.root.is_dir():
        raise FileNotFoundError(f"run directory {run.root} not found; train one with `edgecnn train RECIPE`")
    missing = [p.name for p in (run.model, run.labels, run.recipe) if not p.is_file()]
    if missing:
        raise RecipeError(
            f"{run.root} is not a finished run (missing {', '.join(missing)}); "
            "an interrupted run resumes when you run `edgecnn train` with the same recipe again"
        )
    return run

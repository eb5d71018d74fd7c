"""Recipe schema: YAML validated into typed config. Errors name the field, what is allowed and what was given."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model, field_validator, model_validator

from edgecnn.config.augment import AugmentConfig
from edgecnn.config.base import Section as _Section
from edgecnn.config.training import PhaseConfig, TrainConfig
from edgecnn.data.stream import DEFAULT_CACHE_BUDGET_MB
from edgecnn.errors import RecipeError
from edgecnn.formats import FORMATS, check_target
from edgecnn.runtime.preprocess import ResizeMode

__all__ = ["AugmentConfig", "PhaseConfig", "Recipe", "RecipeError", "TrainConfig", "load_recipe", "parse_recipe"]


class DataConfig(_Section):
    """Where images come from and how they become model input."""

    source: str = Field("folder", description="a data source of edgecnn.data.SOURCES: folder, idx, builtin")
    path: str = Field(description="folder/IDX directory, or a built-in set name (fashion-mnist-subset, digits)")
    image_size: int = Field(224, ge=8, le=1024)
    resize: ResizeMode = "stretch"
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    class_names: list[str] | None = None
    max_per_class: int | None = Field(None, gt=0)
    cache_budget_mb: float = Field(
        DEFAULT_CACHE_BUDGET_MB, gt=0, description="training decodes an image folder into memory when its images "
        "at image_size take at most this many MiB; a larger folder streams from disk in batches",
    )
    workers: int | None = Field(None, ge=1, description="threads decoding streamed images (null: one per CPU core)")

    @field_validator("source")
    @classmethod
    def _known_source(cls, source: str) -> str:
        from edgecnn.data import SOURCES

        if source not in SOURCES:
            raise ValueError(f"unknown data source; available: {', '.join(SOURCES)}")
        return source

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"val_fraction + test_fraction must leave training data (< 0.9), got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        return self


class ModelConfig(_Section):
    name: str
    # null = the architecture's own value (timm's rule: unset arguments never override a builder's default).
    width: float | None = Field(None, gt=0.0, le=4.0, description="width multiplier (null: the model's own, 1.0)")
    weights: str | None = Field(None, description="none, imagenet, or a path to a local weights file")
    dropout: float | None = Field(
        None, ge=0.0, lt=1.0, description="head dropout (null: the architecture's published value)"
    )

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments for edgecnn.models.create; unset ones are dropped there."""
        return {"width": self.width, "weights": self.weights, "dropout": self.dropout}

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        from edgecnn.models import get  # registry import is Keras-free

        get(name)
        return name


class ExportTarget(_Section):
    format: str = "tflite"
    precision: str = "float32"

    @model_validator(mode="after")
    def _supported(self) -> ExportTarget:
        check_target(self.format, self.precision)
        return self


class _ExportSettings(_Section):
    targets: list[ExportTarget] = Field(
        default_factory=lambda: [ExportTarget(precision="float32"), ExportTarget(precision="int8")]
    )
    calibration_images: int = Field(200, ge=1, le=100_000)
    max_drop: float | None = Field(
        None, description="int8 accuracy budget in validation top-1 points; over it, accuracy control tries "
        "remedies and fails the export if none meets it (null: no control)",
    )

    def options(self, format_name: str) -> dict[str, Any]:
        """Keyword options for format `format_name`'s export(): its recipe section export.<format>, if it has one."""
        if FORMATS[format_name].options is None:
            return {}
        return getattr(self, format_name).model_dump()


# One optional section per format that has options (export.tflite, export.onnx, ...), from the format table.
ExportConfig = create_model(
    "ExportConfig",
    __base__=_ExportSettings,
    __doc__="Export targets, calibration, accuracy budget, and each format's options.",
    **{name: (spec.options, Field(default_factory=spec.options)) for name, spec in FORMATS.items() if spec.options},
)


class QATConfig(_Section):
    """Quantisation-aware fine-tuning after float training; int8 TFLite export then uses the fine-tuned model."""

    enabled: bool = False
    epochs: int = Field(3, ge=1, le=1000)
    learning_rate: float = Field(
        1e-4, gt=0.0, le=1.0, description="low: QAT nudges converged weights towards the int8 grid, it does not "
        "retrain (the train section's optimizer and schedule are reused; calibration uses export.calibration_images)",
    )


class Recipe(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    data: DataConfig
    model: ModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    qat: QATConfig = Field(default_factory=QATConfig)

    @model_validator(mode="after")
    def _mixing_leaves_epochs(self) -> Recipe:
        if self.augment.mixes and self.augment.mix_off_epochs >= self.train.epochs:
            raise ValueError(
                f"augment.mix_off_epochs ({self.augment.mix_off_epochs}) leaves no mixed epoch of "
                f"train.epochs ({self.train.epochs})"
            )
        if self.train.warmup_epochs >= self.train.epochs and not self.train.phases:
            raise ValueError(
                f"train.warmup_epochs ({self.train.warmup_epochs}) must be below train.epochs ({self.train.epochs})"
            )
        return self

    def data_settings(self) -> dict[str, Any]:
        """Keyword arguments of edgecnn.data.load_splits for this recipe (seeded with the training seed)."""
        return {**self.data.model_dump(), "seed": self.train.seed}

    def to_yaml(self) -> str:
        """The fully resolved recipe (defaults filled in), as written into the run directory."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and validate a YAML recipe; `overrides` maps dotted keys (train.epochs) to values."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe {path} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML{_yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    return parse_recipe(raw, origin=str(path))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what a YAML error is, on one line (PyYAML's own text spans several)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{where}: {problem}"


def parse_recipe(raw: dict[str, Any], origin: str = "recipe") -> Recipe:
    """Validate a recipe mapping, turning pydantic errors into one readable RecipeError."""
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise RecipeError(f"{origin}: invalid recipe:\n  " + "\n  ".join(lines)) from None


def _describe(error: dict[str, Any]) -> str:
    """One line per problem: dotted field name, what is wrong, what is allowed, a close match if any."""
    location = [part for part in error["loc"] if isinstance(part, str)]
    dotted = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = sorted(_section_for(location[:-1]).model_fields)
        close = difflib.get_close_matches(location[-1], allowed, n=1)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        return f"{dotted}: unknown key{hint} (allowed: {', '.join(allowed)})"
    message = error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    shown = f" (got {given!r})" if given is not None and not isinstance(given, dict) else ""
    return f"{dotted}: {message}{shown}"


def _section_for(location: list[str]) -> type[BaseModel]:
    """The pydantic model class at a location path, for listing its allowed keys."""
    model: type[BaseModel] = Recipe
    for part in location:
        field = model.model_fields.get(part)
        if field is None:
            break
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        nested = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nested is None:
            nested = next(
                (b for a in inner for b in getattr(a, "__args__", ()) if isinstance(b, type)
                 and issubclass(b, BaseModel)), None,
            )
        if nested is None:
            break
        model = nested
    return model


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(f"cannot override {dotted}: {part} is not a section")
    node[leaf] = value

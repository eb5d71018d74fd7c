"""Recipe schema: YAML validated into typed config. Errors name the field, what is allowed and what was given."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from edgecnn.errors import RecipeError
from edgecnn.formats import FORMATS, check_target
from edgecnn.runtime.preprocess import ResizeMode

__all__ = ["Recipe", "RecipeError", "load_recipe", "parse_recipe"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


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


class PhaseConfig(_Section):
    """One training phase: which part of the model trains, for how long, at which learning rate (recompiled)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    epochs: int = Field(ge=1, le=10_000)
    learning_rate: float = Field(gt=0.0, le=10.0)
    backbone: Literal["frozen", "trainable"] = Field(
        "trainable", description="frozen: only the head trains and the backbone's BatchNorm runs in inference mode"
    )
    unfreeze_blocks: int | None = Field(
        None, ge=1, description="with backbone: trainable, unfreeze only the top N blocks (null: all)"
    )
    train_batchnorm: bool = Field(
        False, description="let the backbone's BatchNorm layers train; false keeps them frozen (the Keras guide)"
    )
    schedule: Literal["cosine", "constant"] | None = Field(None, description="null: train.schedule")
    warmup_epochs: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> PhaseConfig:
        if self.backbone == "frozen" and self.unfreeze_blocks is not None:
            raise ValueError("unfreeze_blocks needs backbone: trainable")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be below epochs ({self.epochs})")
        return self


class TrainConfig(_Section):
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(32, ge=1, le=8192)
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: float = Field(1e-3, gt=0.0, le=10.0)
    weight_decay: float = Field(0.0, ge=0.0, lt=1.0)
    schedule: Literal["cosine", "constant"] = "cosine"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    batchnorm_momentum: float | None = Field(
        0.9, gt=0.0, lt=1.0,
        description="set on every BatchNormalization layer; keras.applications use 0.999, whose moving "
        "statistics lag far behind on short from-scratch runs (null keeps the architecture's value)",
    )
    warmup_epochs: int = Field(0, ge=0, description="linear learning-rate warm-up before the schedule")
    seed: int = 0
    phases: list[PhaseConfig] | None = Field(
        None, description="transfer learning in phases (e.g. head, then fine-tune); null: one phase of train.epochs "
        "with the whole model trainable",
    )
    tta: list[str] = Field(default_factory=list, description="test-time augmentation views also scored on test")
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = Field(
        "float32", description="Keras dtype policy while training (the softmax and the saved model stay float32)"
    )
    distribute: Literal["none", "mirrored", "multi_worker", "data_parallel"] = Field(
        "none", description="mirrored/multi_worker: tf.distribute on TensorFlow; data_parallel: "
        "keras.distribution.DataParallel on JAX",
    )

    @field_validator("tta")
    @classmethod
    def _known_views(cls, views: list[str]) -> list[str]:
        from edgecnn.runtime.tta import VIEWS

        unknown = [v for v in views if v not in VIEWS]
        if unknown:
            raise ValueError(f"unknown test-time augmentation {unknown}; available: {', '.join(VIEWS)}")
        return views

    @model_validator(mode="after")
    def _phases_fit_epochs(self) -> TrainConfig:
        if not self.phases:
            return self
        names = [phase.name for phase in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"phase names must be unique, got {names}")
        total = sum(phase.epochs for phase in self.phases)
        if "epochs" in self.model_fields_set and self.epochs != total:
            raise ValueError(f"epochs ({self.epochs}) must equal the phases' epochs ({total}) or be left out")
        self.epochs = total
        return self


class RandAugmentConfig(_Section):
    """keras.layers.RandAugment: `num_ops` random operations per image at strength `factor`."""

    num_ops: int = Field(2, ge=1, le=10)
    factor: float = Field(0.5, gt=0.0, le=1.0, description="strength, 0..1 (Keras' normalised magnitude)")


class AugMixConfig(_Section):
    """keras.layers.AugMix: `num_chains` chains of up to `chain_depth` operations, mixed with Dirichlet weights."""

    num_chains: int = Field(3, ge=1, le=10)
    chain_depth: int = Field(3, ge=1, le=10)
    factor: float = Field(0.3, gt=0.0, le=1.0)
    alpha: float = Field(1.0, gt=0.0, le=10.0)


class RandomErasingConfig(_Section):
    """keras.layers.RandomErasing: erase a random patch (filled with noise) of an image."""

    probability: float = Field(0.25, gt=0.0, le=1.0, description="upper bound of the per-image erasing probability")
    scale: tuple[float, float] = Field((0.02, 0.33), description="patch area range, fraction of the image")

    @field_validator("scale")
    @classmethod
    def _ordered(cls, scale: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError("scale must be [low, high] with 0 < low <= high <= 1")
        return scale


class ColorJitterConfig(_Section):
    """keras.layers.RandomColorJitter; a component at 0 is left out."""

    brightness: float = Field(0.0, ge=0.0, lt=1.0)
    contrast: float = Field(0.0, ge=0.0, lt=1.0)
    saturation: float = Field(0.0, ge=0.0, le=0.5, description="± around unchanged (Keras' 0.5)")
    hue: float = Field(0.0, ge=0.0, le=1.0)


# Augmentation sub-sections: null/false = off, true = on with the defaults, a mapping = on with these settings.
_SWITCHABLE = ("rand_augment", "aug_mix", "random_erasing", "color_jitter")


class AugmentConfig(_Section):
    """Train-time augmentation with Keras preprocessing layers (never part of the exported model).

    Image layers apply in field order (geometry, then photometry, then erasing) through a keras.layers.Pipeline;
    MixUp/CutMix then mix whole batches and their one-hot labels.
    """

    crop_padding: int = Field(0, ge=0, le=256, description="zero-pad by this many pixels, then random-crop back")
    horizontal_flip: bool = False
    rotation: float = Field(0.0, ge=0.0, le=0.5, description="max rotation as a fraction of a full turn")
    zoom: float = Field(0.0, ge=0.0, lt=1.0)
    translate: float = Field(0.0, ge=0.0, lt=1.0)
    rand_augment: RandAugmentConfig | None = None
    aug_mix: AugMixConfig | None = None
    color_jitter: ColorJitterConfig | None = None
    grayscale: float = Field(0.0, ge=0.0, le=1.0, description="probability of turning an image grey (3 channels)")
    contrast: float = Field(0.0, ge=0.0, lt=1.0)
    brightness: float = Field(0.0, ge=0.0, lt=1.0)
    random_erasing: RandomErasingConfig | None = None
    mixup: float = Field(0.0, ge=0.0, le=1.0, description="keras.layers.MixUp alpha (0: off)")
    cutmix: float = Field(0.0, ge=0.0, le=1.0, description="keras.layers.CutMix factor (0: off)")
    mix_probability: float = Field(
        1.0, ge=0.0, le=1.0, description="chance that a batch is mixed (MixUp or CutMix, picked at random when both)"
    )
    mix_off_epochs: int = Field(0, ge=0, description="train the last N epochs without mixing")

    @field_validator(*_SWITCHABLE, mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        if value is True:
            return {}
        return None if value is False else value

    @property
    def mixes(self) -> bool:
        """Whether any batch-level mixing is enabled."""
        return bool(self.mixup or self.cutmix) and self.mix_probability > 0


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

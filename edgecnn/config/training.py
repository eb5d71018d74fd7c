"""Recipe sections of training: train (optimiser, schedule, precision, distribution) and its phases."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgecnn.config.base import Section as _Section


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

"""The recipe's augment section: Keras preprocessing layers for training batches (never in the exported model)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from edgecnn.config.base import Section as _Section


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

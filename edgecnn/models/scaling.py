"""EfficientNet compound scaling: grow depth, width and resolution together with one coefficient φ.

Tan & Le (2019): depth × α^φ, width × β^φ, resolution × γ^φ with α = 1.2, β = 1.1, γ = 1.15, chosen so that
α·β²·γ² ≈ 2 and each step of φ about doubles the FLOPs (MACs grow linearly in depth, quadratically in width
and resolution). The published B1…B7 / Lite1…4 coefficients are rounded versions of this rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgecnn.models import efficientnet_lite
from edgecnn.models.registry import get

if TYPE_CHECKING:
    import keras

ALPHA_DEPTH = 1.2
BETA_WIDTH = 1.1
GAMMA_RESOLUTION = 1.15


@dataclass(frozen=True)
class CompoundScaling:
    """The multipliers compound scaling applies for one φ."""

    phi: float
    depth: float
    width: float
    resolution: float

    @property
    def macs_factor(self) -> float:
        """Expected MAC growth (α·β²·γ²)^φ, exact for a plain conv net whose every layer scales."""
        return self.depth * self.width**2 * self.resolution**2


@dataclass(frozen=True)
class ScalingBase:
    """The coefficients a registered model already has, which scaling multiplies."""

    width: float
    depth: float
    image_size: int


@dataclass(frozen=True)
class ScaledModel:
    """A registered model grown by compound scaling: the absolute coefficients to build it with."""

    base_name: str
    base: ScalingBase
    scaling: CompoundScaling
    width: float
    depth: float
    image_size: int

    @property
    def name(self) -> str:
        """Model name, e.g. 'efficientnet_lite0_phi1'."""
        return f"{self.base_name}_phi{self.scaling.phi:g}"


def compound_scaling(phi: float) -> CompoundScaling:
    """Depth, width and resolution multipliers α^φ, β^φ, γ^φ."""
    return CompoundScaling(
        phi=phi, depth=ALPHA_DEPTH**phi, width=BETA_WIDTH**phi, resolution=GAMMA_RESOLUTION**phi
    )


def scaled_image_size(base_image_size: int, phi: float) -> int:
    """The input resolution for φ: base × γ^φ, rounded to the nearest pixel."""
    return round(base_image_size * compound_scaling(phi).resolution)


def scale_model(name: str, phi: float) -> ScaledModel:
    """Apply compound scaling with coefficient `phi` to a registered model of a scalable family."""
    entry = get(name)
    family = _FAMILIES.get(entry.family)
    if family is None:
        raise ValueError(
            f"{name} (family {entry.family!r}) cannot be compound-scaled: scaling needs a builder that takes depth "
            f"and width coefficients; scalable families: {', '.join(sorted(_FAMILIES))}"
        )
    base = family.base(name)
    scaling = compound_scaling(phi)
    image_size = scaled_image_size(base.image_size, phi)
    if image_size < entry.min_image_size:
        raise ValueError(f"phi={phi:g} shrinks {name} to {image_size} px; it needs at least {entry.min_image_size}")
    return ScaledModel(
        base_name=name, base=base, scaling=scaling,
        width=base.width * scaling.width, depth=base.depth * scaling.depth, image_size=image_size,
    )


def build_scaled(scaled: ScaledModel, num_classes: int) -> keras.Model:
    """Build the classifier for a scaled model (random weights)."""
    return _FAMILIES[get(scaled.base_name).family].build(scaled, num_classes)


@dataclass(frozen=True)
class _Family:
    base: Callable[[str], ScalingBase]
    build: Callable[[ScaledModel, int], keras.Model]


def _lite_base(name: str) -> ScalingBase:
    variant = efficientnet_lite.VARIANTS[name]
    return ScalingBase(width=variant.width, depth=variant.depth, image_size=variant.resolution)


def _build_lite(scaled: ScaledModel, num_classes: int) -> keras.Model:
    from edgecnn.models.applications import assemble

    base_variant = efficientnet_lite.VARIANTS[scaled.base_name]
    variant = efficientnet_lite.Variant(
        width=scaled.width, depth=scaled.depth, resolution=scaled.image_size, dropout=base_variant.dropout
    )
    backbone = efficientnet_lite.efficientnet_lite_backbone(variant, scaled.image_size)
    return assemble(scaled.name, backbone, num_classes, variant.dropout, None)


# registry family → how to read its coefficients and build it with new ones.
_FAMILIES: dict[str, _Family] = {
    "efficientnet_lite": _Family(base=_lite_base, build=_build_lite),
}

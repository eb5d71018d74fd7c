"""Model registry: name → builder. Builders import Keras inside, so listing names stays TensorFlow-free."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

# builder(num_classes, image_size, width, weights, dropout) -> keras.Model taking float32 0..255 RGB.
Builder = Callable[..., "keras.Model"]


@dataclass(frozen=True)
class ModelEntry:
    """What the toolkit knows about a registered architecture."""

    name: str
    build: Builder
    default_image_size: int
    family: str
    normalisation: str
    quantization_friendly: bool
    min_image_size: int = 32
    has_width: bool = True
    description: str = ""


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    default_image_size: int,
    family: str,
    normalisation: str,
    quantization_friendly: bool,
    min_image_size: int = 32,
    has_width: bool = True,
) -> Callable[[Builder], Builder]:
    """Decorator adding a builder to the registry under `name`."""

    def decorate(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(
            name=name,
            build=builder,
            default_image_size=default_image_size,
            family=family,
            normalisation=normalisation,
            quantization_friendly=quantization_friendly,
            min_image_size=min_image_size,
            has_width=has_width,
            description=(builder.__doc__ or "").strip().splitlines()[0] if builder.__doc__ else "",
        )
        return builder

    return decorate


def names(pattern: str = "*") -> list[str]:
    """Registered model names matching a glob pattern, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get(name: str) -> ModelEntry:
    """The registry entry for `name`; unknown names raise with the closest matches."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Available: {', '.join(names())}") from None


def create(
    name: str,
    num_classes: int,
    image_size: int | None = None,
    width: float = 1.0,
    weights: str | None = None,
    dropout: float = 0.2,
    **kwargs: Any,
) -> keras.Model:
    """Build a registered classifier: float32 RGB input in 0..255, normalisation inside, softmax output."""
    entry = get(name)
    image_size = image_size or entry.default_image_size
    if image_size < entry.min_image_size:
        raise ValueError(f"{name} needs image_size >= {entry.min_image_size}, got {image_size}")
    if width != 1.0 and not entry.has_width:
        raise ValueError(f"{name} has no width multiplier; got width={width}")
    return entry.build(
        num_classes=num_classes, image_size=image_size, width=width, weights=weights, dropout=dropout, **kwargs
    )

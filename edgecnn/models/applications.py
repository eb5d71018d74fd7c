"""keras.applications models as edgecnn backbones, and the one way every zoo builder resolves `weights`.

A backbone takes RGB pixels in 0..255 and returns a feature map, normalisation included, so it can be reused
alone (feature extraction) and a device feeds raw pixels. `weights` is resolved the same way everywhere:
  - None: random initialisation;
  - "imagenet": the ImageNet weights of the backbone (Keras' own download), with a new head;
  - a path: a file saved from the same classifier (`model.save_weights`), loaded into the whole model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgecnn.errors import WeightsError
from edgecnn.models.heads import BACKBONE_NAME, classifier, image_input, keras_application, resolve_weights

if TYPE_CHECKING:
    import keras

IMAGENET_LABELS_FILE = Path(__file__).with_name("imagenet_labels.txt")


def split_weights(weights: str | None, model_name: str, imagenet: bool = True) -> tuple[str | None, str | None]:
    """Resolve `weights` into (what the backbone loads: 'imagenet' or None, a whole-classifier file or None)."""
    resolved = resolve_weights(weights, model_name)
    if resolved == "imagenet":
        if not imagenet:
            raise WeightsError(f"{model_name} has no ImageNet weights; use weights: none or a local weights file")
        return "imagenet", None
    return None, resolved


def keras_backbone(
    factory: Callable[..., keras.Model],
    model_name: str,
    image_size: int,
    weights: str | None,
    normalise: Callable[[keras.KerasTensor], keras.KerasTensor] | None = None,
    features: Callable[[keras.Model], keras.KerasTensor] | None = None,
    **kwargs,
) -> keras.Model:
    """A keras.applications model as the backbone: 0..255 RGB pixels in, a feature map out.

    `normalise` maps the pixels to the range the application was trained on, for applications without
    preprocessing of their own; `features` picks the tensor that ends the backbone (default: the model output).
    """
    import keras

    pixels = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="pixels")
    x = normalise(pixels) if normalise is not None else pixels
    application = keras_application(factory, model_name, weights, input_tensor=x, **kwargs)
    output = application.output if features is None else features(application)
    # Re-wrapped instead of passing name="backbone": EfficientNetV2 picks its preprocessing from its name.
    return keras.Model(pixels, output, name=BACKBONE_NAME)


def assemble(
    model_name: str, backbone: keras.Model, num_classes: int, dropout: float, weights_file: str | None
) -> keras.Model:
    """Image input → backbone → pooled softmax head, then the optional whole-classifier weights file."""
    inputs = image_input(backbone.input_shape[1])
    model = classifier(inputs, backbone(inputs), num_classes, dropout, name=model_name)
    return load_weights_file(model, weights_file)


def load_weights_file(model: keras.Model, path: str | None) -> keras.Model:
    """Load a weights file saved from the same classifier (same classes and input size) into `model`."""
    if path is None:
        return model
    try:
        model.load_weights(path)
    except Exception as exc:  # Keras raises ValueError, KeyError or OSError depending on the mismatch
        raise WeightsError(
            f"{model.name}: could not load weights from {path}. Expected a file saved with model.save_weights() "
            f"from a {model.name} classifier with {model.output_shape[-1]} classes at {model.input_shape[1]} px; "
            f"got {type(exc).__name__}: {exc}"
        ) from exc
    return model


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names in class-index order (torchvision's short names, BSD-3-Clause)."""
    labels = IMAGENET_LABELS_FILE.read_text(encoding="utf-8").splitlines()
    if len(labels) != 1000:
        raise RuntimeError(f"{IMAGENET_LABELS_FILE} should hold 1000 class names, found {len(labels)}")
    return labels

"""Embedding export: a trained classifier's backbone + global pooling + L2 normalisation, and its parity check.

The classifier nests its feature extractor as the layer named `backbone` (edgecnn.models.heads.BACKBONE_NAME); the
embedding model reuses that layer's weights, so any run (or an ImageNet-initialised model) yields an embedder.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from edgecnn.data import ImageSet
from edgecnn.errors import ExportError
from edgecnn.models.heads import BACKBONE_NAME
from edgecnn.runtime import Embedder

if TYPE_CHECKING:
    import keras

Job = TypeVar("Job")  # edgecnn.export.pipeline.ExportJob (not imported: the pipeline imports this module)

# Float precisions: the least cosine similarity to Keras' embedding that every check image must reach.
MIN_COSINE: dict[str, float] = {"float32": 0.99, "float16": 0.99}
# Quantised precisions change embeddings by design, and a few outlier images (min cosine) say little about retrieval
# quality (benchmarks/RESULTS.md, retrieval): they are reported, and pass on a sanity floor of the mean cosine.
MIN_MEAN_COSINE_QUANTISED = 0.9


def embedding_model(classifier: keras.Model) -> keras.Model:
    """Image input → the classifier's backbone → global average pooling → unit L2 length."""
    import keras

    try:
        backbone = classifier.get_layer(BACKBONE_NAME)
    except ValueError:
        raise ExportError(
            f"model {classifier.name!r} has no layer named {BACKBONE_NAME!r}, so its feature extractor cannot be "
            "exported as an embedder; models from edgecnn.models nest their backbone under that name"
        ) from None
    inputs = keras.Input(shape=classifier.input_shape[1:], dtype="float32", name="image")
    features = backbone(inputs)
    if len(features.shape) == 4:
        features = keras.layers.GlobalAveragePooling2D(name="embed_pool")(features)
    elif len(features.shape) != 2:
        raise ExportError(f"backbone output of {classifier.name!r} has shape {features.shape}; expected (N, H, W, C)")
    outputs = keras.layers.UnitNormalization(axis=-1, name="embedding")(features)
    return keras.Model(inputs, outputs, name=f"{classifier.name}_embedding")


def embedding_job(job: Job, classifier: keras.Model) -> Job:
    """`job` converting and checking the embedding model of the run's float `classifier` (model.keras, also for
    QAT runs), without accuracy control: there is no top-1 to budget."""
    model = embedding_model(classifier)
    return dataclasses.replace(  # type: ignore[type-var]
        job, model=model, reference=model, model_file=job.run.model, max_drop=None, task="embed",
        embedding_size=int(model.output_shape[-1]),
    )


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=1)


def embedding_parity(keras_embeddings: np.ndarray, embedder: Embedder, check: ImageSet, precision: str) -> dict:
    """Cosine similarity of the bundle's embeddings (through the device runtime) to Keras' on the check images,
    and whether each image's nearest other check image is the same under both."""
    exported = embedder.embed(check.images)
    cosine = cosine_similarity(keras_embeddings, exported)
    if precision in MIN_COSINE:
        limits, passed = {"min_cosine": MIN_COSINE[precision]}, np.min(cosine) >= MIN_COSINE[precision]
    else:
        limits, passed = {"min_mean_cosine": MIN_MEAN_COSINE_QUANTISED}, np.mean(cosine) >= MIN_MEAN_COSINE_QUANTISED
    return {
        "images": int(len(check)),
        "rule": "cosine similarity to Keras",
        "mean_cosine": float(np.mean(cosine)),
        "min_cosine": float(np.min(cosine)),
        "nearest_neighbour_agreement": float(np.mean(_nearest(keras_embeddings) == _nearest(exported))),
        "limits": limits,
        "passed": bool(passed),
    }


def _nearest(embeddings: np.ndarray) -> np.ndarray:
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, -np.inf)
    return similarity.argmax(axis=1)


def summary(manifest) -> str:
    """One line on an embedding bundle's parity."""
    parity = manifest.checks["parity"]
    verdict = "ok" if parity["passed"] else "FAILED"
    return (
        f"{manifest.format} {manifest.precision} embedder ({manifest.embedding_size}-d): "
        f"{manifest.size_bytes / 1e6:.2f} MB, cosine to Keras mean {parity['mean_cosine']:.4f} "
        f"min {parity['min_cosine']:.4f}, nearest-neighbour agreement {parity['nearest_neighbour_agreement']:.2%} "
        f"— checks {verdict}"
    )

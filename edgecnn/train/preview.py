"""A preview of what training sees: a batch of augmented (and mixed) training images with their labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.config import Recipe
from edgecnn.data import ImageSet
from edgecnn.data.stream import FileSet, read_part
from edgecnn.train.batches import training_batches
from edgecnn.train.reports import label_caption, plot_image_grid


def augmented_samples(recipe: Recipe, train: ImageSet | FileSet, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` training images as a first-epoch batch gives them, always mixed when mixing is on: (uint8, labels)."""
    count = min(count, len(train))
    rng = np.random.default_rng(recipe.train.seed)
    chosen = np.sort(rng.choice(len(train), count, replace=False))
    images, kept = read_part(train, chosen)  # a streamed split decodes just these
    batches = training_batches(recipe, images, train.labels[chosen][kept], len(train.class_names))
    batches.batch_size = count  # one batch: mixing pairs images within it, as in training
    if batches.mixer is not None:
        batches.mixer.probability = 1.0  # show what mixing does; training mixes a batch with mix_probability
    images, labels = batches[0]
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels


def write_preview(recipe: Recipe, train: ImageSet | FileSet, path: Path, count: int = 32) -> Path | None:
    """The PNG grid of `count` augmented training samples, each captioned with its (mixed) label."""
    images, labels = augmented_samples(recipe, train, count)
    captions = [label_caption(label, train.class_names) for label in labels]
    title = f"{recipe.name}: augmented training samples"
    if recipe.augment.mixes:
        title += f" (all mixed here; training mixes {recipe.augment.mix_probability:.0%} of its batches)"
    return plot_image_grid(images, captions, path, title=title)

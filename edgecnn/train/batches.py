"""Training batches from in-memory uint8 images: seeded shuffling and augmentation, any Keras backend."""

from __future__ import annotations

import math

import keras
import numpy as np


class ImageBatches(keras.utils.PyDataset):
    """Yields (float32 pixels 0..255, one-hot labels); reshuffles every epoch from a seeded generator.

    One-hot targets let label smoothing, MixUp and CutMix use Keras' own losses and layers.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        num_classes: int,
        batch_size: int,
        augmentation: keras.Sequential | None = None,
        shuffle: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        self.images = images
        self.labels = labels
        self.one_hot = np.eye(num_classes, dtype=np.float32)[labels]
        self.batch_size = batch_size
        self.augmentation = augmentation
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(labels)) if shuffle else np.arange(len(labels))

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        batch = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        pixels = self.images[batch].astype(np.float32)
        if self.augmentation is not None:
            pixels = keras.ops.convert_to_numpy(self.augmentation(pixels, training=True))
            pixels = np.clip(pixels, 0.0, 255.0)
        return pixels, self.one_hot[batch]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(len(self.labels))

"""Training batches from uint8 images, in memory or streamed from files: seeded shuffling and augmentation, any
Keras backend."""

from __future__ import annotations

import math

import keras
import numpy as np

from edgecnn.config import Recipe
from edgecnn.data.stream import FileSet, Prefetcher
from edgecnn.train.augment import batch_augmenter, build_augmentation
from edgecnn.train.mixing import BatchMixer, build_mixer


class ImageBatches(keras.utils.PyDataset):
    """Yields (float32 pixels 0..255, one-hot labels); reshuffles every epoch from a seeded generator.

    One-hot targets let label smoothing, MixUp and CutMix use Keras' own losses and layers. `images` is an array, or
    a FileSet decoded a few batches ahead on worker threads (augmentation stays on the calling thread, so a streamed
    epoch is the in-memory one, bit for bit, less any file that fails to decode).
    """

    def __init__(
        self,
        images: np.ndarray | FileSet,
        labels: np.ndarray,
        num_classes: int,
        batch_size: int,
        augmentation: keras.layers.Pipeline | None = None,
        shuffle: bool = True,
        seed: int = 0,
        mixer: BatchMixer | None = None,
    ):
        super().__init__()
        self.images = images
        self.labels = labels
        self.one_hot = np.eye(num_classes, dtype=np.float32)[labels]
        self.batch_size = batch_size
        self.augmentation = augmentation
        self._augment = batch_augmenter(augmentation) if augmentation is not None else None
        self.mixer = mixer
        self.epoch = 0  # set by mixing.TrackEpoch; mixing stops for the last epochs
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(labels)) if shuffle else np.arange(len(labels))
        self._epoch_order = 0  # counts reshuffles, so batches decoded ahead are keyed by the order they came from
        self._prefetcher = Prefetcher(images) if isinstance(images, FileSet) else None

    # Batch sizes must be a multiple of this (keras.distribution.DataParallel splits every batch evenly over its
    # devices): the last batch is cut to a multiple, leaving out at most batch_multiple - 1 images per epoch.
    batch_multiple = 1

    def __len__(self) -> int:
        usable = len(self.labels) - (len(self.labels) % self.batch_size) % self.batch_multiple
        return math.ceil(usable / self.batch_size)

    def _indices(self, index: int) -> np.ndarray:
        batch = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        return batch[: len(batch) - len(batch) % self.batch_multiple]

    def _read(self, index: int, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 images, their indices): streamed batches lose the files that fail to decode."""
        if self._prefetcher is None:
            return self.images[batch], batch
        upcoming = (((self._epoch_order, i), self._indices(i)) for i in range(index + 1, len(self)))
        images, kept = self._prefetcher.get((self._epoch_order, index), batch, upcoming)
        usable = kept.sum() - kept.sum() % self.batch_multiple  # a lost file must not break the even split
        return images[:usable], batch[kept][:usable]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        images, batch = self._read(index, self._indices(index))
        pixels = images.astype(np.float32)
        if self._augment is not None:
            pixels = self._augment(pixels)
            pixels = np.clip(pixels, 0.0, 255.0)
        labels = self.one_hot[batch]
        if self.mixer is not None:
            pixels, labels = self.mixer(pixels, labels, self.epoch)
        return pixels, labels

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(len(self.labels))
            self._epoch_order += 1
            if self._prefetcher is not None:
                self._prefetcher.forget()


def training_batches(
    recipe: Recipe, images: np.ndarray | FileSet, labels: np.ndarray, num_classes: int
) -> ImageBatches:
    """Shuffled, augmented and (when the recipe mixes) MixUp/CutMix-mixed training batches."""
    return ImageBatches(
        images, labels, num_classes, recipe.train.batch_size,
        augmentation=build_augmentation(recipe.augment, recipe.train.seed, recipe.data.image_size),
        seed=recipe.train.seed, mixer=build_mixer(recipe.augment, recipe.train.epochs, recipe.train.seed),
    )

"""Batch-level MixUp and CutMix (Keras' own layers) on images and one-hot labels, with a per-batch probability.

Keras' MixUp and CutMix mix labels only when given the dict {"images", "labels"}: on a bare image array they mix
the pixels and leave the labels as they were. They also take no `value_range` (CutMix raises on it).
"""

from __future__ import annotations

import keras
import numpy as np

from edgecnn.config import AugmentConfig


def _mix_layers(config: AugmentConfig, seed: int) -> list[keras.layers.Layer]:
    layers = []
    if config.mixup:
        layers.append(keras.layers.MixUp(alpha=config.mixup, seed=seed))
    if config.cutmix:
        layers.append(keras.layers.CutMix(factor=config.cutmix, seed=seed + 1))
    return layers


class BatchMixer:
    """Mixes a batch with probability `probability` (MixUp or CutMix, chosen at random) before epoch `mix_until`."""

    def __init__(self, layers: list[keras.layers.Layer], probability: float, mix_until: int, seed: int):
        if not layers:
            raise ValueError("BatchMixer needs at least one of MixUp, CutMix")
        self.layers = layers
        self.probability = probability
        self.mix_until = mix_until
        self._rng = np.random.default_rng(seed)

    def __call__(self, images: np.ndarray, labels: np.ndarray, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(images, one-hot labels) of one batch, mixed or as they came."""
        # Both draws happen for every batch, so whether a batch mixes does not shift the later draws.
        mixes = self._rng.random() < self.probability
        layer = self.layers[int(self._rng.integers(len(self.layers)))]
        if not mixes or epoch >= self.mix_until or len(images) < 2:
            return images, labels
        mixed = layer({"images": images, "labels": labels}, training=True)
        return keras.ops.convert_to_numpy(mixed["images"]), keras.ops.convert_to_numpy(mixed["labels"])


def build_mixer(config: AugmentConfig, epochs: int, seed: int) -> BatchMixer | None:
    """The recipe's batch mixer, or None when neither MixUp nor CutMix is enabled."""
    if not config.mixes:
        return None
    return BatchMixer(_mix_layers(config, seed), config.mix_probability, epochs - config.mix_off_epochs, seed)


class TrackEpoch(keras.callbacks.Callback):
    """Tells the training batches which epoch is running, so mixing can stop for the last epochs (resume too)."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.batches.epoch = epoch

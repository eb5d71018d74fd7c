"""The augmentation ImageBatches applies per batch (traced into one graph on TensorFlow) draws what the eager
Pipeline draws: same seed, same images, for every image layer, across batch sizes."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.config import AugmentConfig

keras = pytest.importorskip("keras")

from edgecnn.train.augment import batch_augmenter, build_augmentation  # noqa: E402

GEOMETRY_AND_COLOUR = {"crop_padding": 2, "horizontal_flip": True, "rotation": 0.05, "rand_augment": True,
                       "color_jitter": {"brightness": 0.1, "hue": 0.05}, "random_erasing": {"probability": 1.0}}


def test_batch_augmenter_matches_the_eager_pipeline_batch_after_batch() -> None:
    images = np.random.default_rng(0).uniform(0, 255, (12, 16, 16, 3)).astype(np.float32)
    config = AugmentConfig(**GEOMETRY_AND_COLOUR)
    eager = build_augmentation(config, seed=3, image_size=16)
    fast = batch_augmenter(build_augmentation(config, seed=3, image_size=16))
    for count in (12, 12, 7):  # a smaller last batch must not change the draws
        expected = keras.ops.convert_to_numpy(eager(images[:count], training=True))
        got = fast(images[:count])
        assert isinstance(got, np.ndarray) and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=0.05)
    assert not np.allclose(fast(images), images)  # it augments

"""HOG + SVM on an edgecnn data set: the classic pipeline CNNs are compared with (accuracy and per-image time).

HOG runs on the grey image at the data's image size; features are standardised before the SVM. The linear SVM
(hinge loss fitted by SGD) trains on every training image; the exact RBF SVM scales quadratically with them, so
`max_train` caps its training set, and `rbf_approx` (a Nyström approximation of the RBF kernel + the linear SVM)
takes them all.
Figures on Fashion-MNIST: benchmarks/RESULTS.md (HOG + SVM baseline).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from edgecnn.data import DataSplits, ImageSet
from edgecnn.errors import DataError, require

INSTALL = "pip install 'edgecnn[baseline]' (scikit-image and scikit-learn)"


@dataclass(frozen=True)
class HOGSettings:
    """HOG descriptor settings (Dalal & Triggs' 9 unsigned orientations, L2-Hys block normalisation)."""

    orientations: int = 9
    cell: int = 4  # pixels per square cell
    block: int = 2  # cells per square block


def hog_features(images: np.ndarray, settings: HOGSettings = HOGSettings(), progress: bool = True) -> np.ndarray:
    """HOG descriptors (N, F) float32 of uint8 RGB images (N, H, W, 3)."""
    feature = require("skimage.feature", "the HOG baseline", INSTALL)
    if images.shape[1] < settings.cell * settings.block:
        raise DataError(f"HOG with {settings.block}x{settings.block} blocks of {settings.cell}-pixel cells needs "
                        f"images of at least {settings.cell * settings.block} px; got {images.shape[1]}")

    def one(image: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return feature.hog(grey, orientations=settings.orientations, pixels_per_cell=(settings.cell, settings.cell),
                           cells_per_block=(settings.block, settings.block), block_norm="L2-Hys",
                           feature_vector=True)

    rows = [one(image) for image in tqdm(images, desc="HOG", unit="img", disable=not progress, leave=False)]
    return np.asarray(rows, np.float32).reshape(len(images), -1)


def _linear(c: float, train_images: int) -> Any:
    """A linear SVM (hinge loss + L2, C = 1 / (alpha · n)) fitted by averaged SGD: seconds on 60,000 images, where
    liblinear's LinearSVC ran for over eight minutes without finishing on this project's 2-core machine."""
    linear_model = require("sklearn.linear_model", "the HOG baseline", INSTALL)
    return linear_model.SGDClassifier(loss="hinge", alpha=1.0 / (c * train_images), average=True, max_iter=30,
                                      tol=1e-4, random_state=0)


def _rbf(c: float, train_images: int) -> Any:
    svm = require("sklearn.svm", "the HOG baseline", INSTALL)
    return svm.SVC(C=c, kernel="rbf", gamma="scale", cache_size=1000)


NYSTROEM_COMPONENTS = 4000


def _rbf_approx(c: float, train_images: int) -> Any:
    """An RBF SVM on every training image: Nyström's low-rank approximation of the RBF kernel feeding the linear
    SVM; time and memory grow linearly with the images where the exact SVC's grow with their square."""
    approximation = require("sklearn.kernel_approximation", "the HOG baseline", INSTALL)
    pipeline = require("sklearn.pipeline", "the HOG baseline", INSTALL)
    # gamma None = 1 / n_features: SVC's gamma 'scale' for the standardised (unit-variance) features it receives.
    nystroem = approximation.Nystroem(gamma=None, n_components=min(NYSTROEM_COMPONENTS, train_images), random_state=0)
    return pipeline.make_pipeline(nystroem, _linear(c, train_images))


# kernel → (classifier factory taking C and the number of training images, default C)
KERNELS: dict[str, tuple[Callable[[float, int], Any], float]] = {
    "linear": (_linear, 1.0), "rbf": (_rbf, 10.0), "rbf_approx": (_rbf_approx, 10.0),
}


@dataclass(frozen=True)
class BaselineReport:
    """Test accuracy and timing of one HOG + SVM classifier."""

    kernel: str
    c: float
    train_images: int
    test_images: int
    features: int
    accuracy: float
    fit_s: float
    hog_ms_per_image: float  # batch feature extraction, per image
    svm_ms_per_image: float  # batch prediction, per image
    single_image_ms: float  # median of HOG + predict on one image at a time

    @property
    def ms_per_image(self) -> float:
        return self.hog_ms_per_image + self.svm_ms_per_image

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {**self.__dict__, "ms_per_image": self.ms_per_image}


def _subset(image_set: ImageSet, limit: int | None, seed: int) -> ImageSet:
    if limit is None or limit >= len(image_set):
        return image_set
    keep = np.sort(np.random.default_rng(seed).permutation(len(image_set))[:limit])
    return image_set.subset(keep)


def run_baseline(
    splits: DataSplits, kernel: str = "linear", c: float | None = None, max_train: int | None = None,
    split: str = "test", settings: HOGSettings = HOGSettings(), seed: int = 0, progress: bool = True,
    single_image_runs: int = 50,
) -> BaselineReport:
    """Train HOG + SVM on `splits.train` (at most `max_train` images) and score it on the named split."""
    preprocessing = require("sklearn.preprocessing", "the HOG baseline", INSTALL)
    pipeline = require("sklearn.pipeline", "the HOG baseline", INSTALL)
    try:
        factory, default_c = KERNELS[kernel]
    except KeyError:
        raise DataError(f"unknown SVM kernel {kernel!r}; available: {', '.join(KERNELS)}") from None
    c = default_c if c is None else c
    train, test = _subset(splits.train, max_train, seed), getattr(splits, split)
    if len(test) == 0:
        raise DataError(f"the {split} split is empty; choose another split or give more data")
    model = pipeline.make_pipeline(preprocessing.StandardScaler(), factory(c, len(train)))
    started = time.perf_counter()
    model.fit(hog_features(train.images, settings, progress), train.labels)
    fit_s = time.perf_counter() - started

    started = time.perf_counter()
    test_features = hog_features(test.images, settings, progress)
    hog_s = time.perf_counter() - started
    started = time.perf_counter()
    predicted = model.predict(test_features)
    svm_s = time.perf_counter() - started

    single = []
    for image in test.images[:single_image_runs]:
        started = time.perf_counter()
        model.predict(hog_features(image[None], settings, progress=False))
        single.append(time.perf_counter() - started)
    return BaselineReport(
        kernel=kernel, c=float(c), train_images=len(train), test_images=len(test), features=test_features.shape[1],
        accuracy=float(np.mean(predicted == test.labels)), fit_s=fit_s, hog_ms_per_image=1000 * hog_s / len(test),
        svm_ms_per_image=1000 * svm_s / len(test), single_image_ms=1000 * float(np.median(single)),
    )

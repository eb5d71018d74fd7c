"""The hand-crafted-feature baseline: HOG descriptors (scikit-image) + a linear or RBF SVM (scikit-learn)."""

from edgecnn.baseline.hog_svm import KERNELS, BaselineReport, hog_features, run_baseline

__all__ = ["KERNELS", "BaselineReport", "hog_features", "run_baseline"]

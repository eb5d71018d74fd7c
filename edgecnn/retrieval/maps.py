"""t-SNE maps of embeddings (or raw pixels, for comparison): a 2-D scatter PNG coloured by class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.errors import DataError, require


def sample_per_class(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of at most `per_class` randomly chosen items of each label, sorted."""
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == label))[:per_class] for label in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def tsne_2d(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """(N, 2) t-SNE coordinates of (N, D) features (scikit-learn; cosine distance, PCA initialisation)."""
    manifold = require("sklearn.manifold", "t-SNE maps", "pip install 'edgecnn[train]' (scikit-learn)")
    features = np.asarray(features, np.float32).reshape(len(features), -1)
    if len(features) < 5:
        raise DataError(f"a t-SNE map needs at least 5 images, got {len(features)}")
    # Perplexity must stay below the number of points.
    perplexity = min(perplexity, (len(features) - 1) / 3)
    tsne = manifold.TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
    return tsne.fit_transform(features)


def plot_map(points: np.ndarray, labels: np.ndarray, class_names: list[str], path: str | Path, title: str) -> Path:
    """Scatter `points` (N, 2) coloured by class with a legend, written as a PNG."""
    require("matplotlib", "t-SNE maps", "pip install 'edgecnn[train]' (matplotlib)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7.5, 6.5))
    colours = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for label, name in enumerate(class_names):
        mask = labels == label
        if mask.any():
            axes.scatter(points[mask, 0], points[mask, 1], s=6, color=colours(label % colours.N), label=name)
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(markerscale=3, fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def tsne_map(features: np.ndarray, labels: np.ndarray, class_names: list[str], path: str | Path, title: str,
             seed: int = 0) -> Path:
    """t-SNE of `features` plotted by class into the PNG at `path`."""
    return plot_map(tsne_2d(features, seed), np.asarray(labels), class_names, path, title)

"""Retrieval metrics of query embeddings against a labelled gallery: Recall@k, MAP@R and k-NN top-1.

Recall@k: the share of queries with at least one same-class image among their k nearest gallery images.
MAP@R (Musgrave et al., "A Metric Learning Reality Check", 2020): with R the number of gallery images of the query's
class, the mean over queries of (1/R) Σ_{i≤R} precision@i · [i-th neighbour is of the query's class].
k-NN top-1: accuracy of a majority vote of the k nearest gallery labels (ties go to the nearer class).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from edgecnn.errors import DataError
from edgecnn.retrieval.search import top_k

CHUNK = 512


@dataclass(frozen=True)
class RetrievalReport:
    """Retrieval scores of `queries` query images against `gallery` gallery images."""

    queries: int
    gallery: int
    recall: dict[int, float]  # k → Recall@k
    map_at_r: float
    knn_top1: float
    knn_k: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "queries": self.queries, "gallery": self.gallery,
            **{f"recall_at_{k}": value for k, value in self.recall.items()},
            "map_at_r": self.map_at_r, "knn_top1": self.knn_top1, "knn_k": self.knn_k,
            "seconds": round(self.seconds, 3), **self.extra,
        }


def retrieval_report(
    gallery: np.ndarray, gallery_labels: np.ndarray, queries: np.ndarray, query_labels: np.ndarray,
    ks: tuple[int, ...] = (1, 5), knn_k: int = 10, progress: bool = False,
) -> RetrievalReport:
    """Score unit-length `queries` (Q, D) against `gallery` (N, D) by exact cosine similarity."""
    gallery_labels = np.asarray(gallery_labels)
    query_labels = np.asarray(query_labels)
    if len(gallery) == 0 or len(queries) == 0:
        raise DataError(f"retrieval needs a gallery and queries; got {len(gallery)} and {len(queries)} images")
    if (gallery_labels < 0).any() or (query_labels < 0).any():
        raise DataError("retrieval metrics need a class label for every gallery and query image")
    started = time.perf_counter()
    num_classes = int(max(gallery_labels.max(), query_labels.max())) + 1
    per_class = np.bincount(gallery_labels, minlength=num_classes)
    ks = tuple(sorted(set(ks)))
    depth = int(min(len(gallery), max(*ks, knn_k, per_class.max())))
    hits = {k: 0 for k in ks}
    ap_sum, knn_correct = 0.0, 0
    with tqdm(total=len(queries), desc="retrieval", unit="query", disable=not progress, leave=False) as bar:
        for start in range(0, len(queries), CHUNK):
            labels = query_labels[start : start + CHUNK]
            order = top_k(queries[start : start + CHUNK] @ gallery.T, depth)
            relevant = gallery_labels[order] == labels[:, None]
            for k in ks:
                hits[k] += int(relevant[:, :k].any(axis=1).sum())
            ap_sum += float(average_precision_at_r(relevant, per_class[labels]).sum())
            knn_correct += int((knn_vote(gallery_labels[order[:, :knn_k]], num_classes) == labels).sum())
            bar.update(len(labels))
    n = len(queries)
    return RetrievalReport(
        queries=n, gallery=len(gallery), recall={k: hits[k] / n for k in ks}, map_at_r=ap_sum / n,
        knn_top1=knn_correct / n, knn_k=knn_k, seconds=time.perf_counter() - started,
    )


def average_precision_at_r(relevant: np.ndarray, r: np.ndarray) -> np.ndarray:
    """AP@R per query from `relevant` (Q, ≥max R) ranked hits and R per query (0 where R is 0)."""
    ranks = np.arange(1, relevant.shape[1] + 1)
    within = ranks[None, :] <= r[:, None]
    hits = relevant & within
    precision = np.cumsum(hits, axis=1) / ranks[None, :]
    return np.where(r > 0, np.sum(precision * hits, axis=1) / np.maximum(r, 1), 0.0)


def knn_vote(neighbour_labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Majority label of each row of (Q, k) labels ranked nearest first; a tie goes to the class seen first."""
    q, k = neighbour_labels.shape
    # Each vote counts 1 plus a bonus of 2^-(rank+1): all bonuses together stay below one vote, and each exceeds all
    # those after it, so among tied classes the one holding the nearest neighbour wins.
    weights = 1.0 + 0.5 ** (np.arange(k) + 1.0)
    votes = np.zeros((q, num_classes))
    np.add.at(votes, (np.repeat(np.arange(q), k), neighbour_labels.ravel()), np.tile(weights, q))
    return votes.argmax(axis=1)

"""Nearest neighbours by cosine similarity: exact in numpy (default), or approximate with faiss (optional extra).

Embeddings are unit length, so cosine similarity is a dot product. Search latency at gallery sizes is measured in
benchmarks/RESULTS.md (Retrieval).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgecnn.errors import UsageError, require

CHUNK = 1024  # queries per matrix product: bounds memory at CHUNK × gallery size floats


def exact_search(gallery: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, similarities), each (Q, k), of the k most similar gallery rows per query, best first."""
    k = min(k, len(gallery))
    indices = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    for start in range(0, len(queries), CHUNK):
        similarity = queries[start : start + CHUNK] @ gallery.T
        top = top_k(similarity, k)
        indices[start : start + CHUNK] = top
        scores[start : start + CHUNK] = np.take_along_axis(similarity, top, axis=1)
    return indices, scores


def top_k(similarity: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest values of each row, largest first (argpartition, then a sort of k)."""
    if k < similarity.shape[1]:
        part = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(similarity.shape[1]), similarity.shape).copy()
    order = np.argsort(-np.take_along_axis(similarity, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


class FaissIndex:
    """Approximate inner-product search: an HNSW graph over the gallery (faiss-cpu, `pip install edgecnn[ann]`)."""

    def __init__(self, gallery: np.ndarray, neighbours: int = 32, ef_search: int = 64):
        faiss = require("faiss", "approximate search (--method faiss)", "pip install 'edgecnn[ann]' (faiss-cpu)")
        self.index = faiss.IndexHNSWFlat(gallery.shape[1], neighbours, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efSearch = ef_search
        self.index.add(np.ascontiguousarray(gallery, np.float32))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, indices = self.index.search(np.ascontiguousarray(queries, np.float32), k)
        return indices.astype(np.int64), scores.astype(np.float32)


def faiss_search(gallery: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, similarities) from a FaissIndex built for this call (build one yourself to reuse it)."""
    return FaissIndex(gallery).search(queries, min(k, len(gallery)))


SEARCH_METHODS: dict[str, Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]] = {
    "exact": exact_search,
    "faiss": faiss_search,
}


def search(gallery: np.ndarray, queries: np.ndarray, k: int = 5, method: str = "exact"
           ) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest gallery rows of each query (Q, D) by cosine similarity, with the named method."""
    try:
        searcher = SEARCH_METHODS[method]
    except KeyError:
        raise UsageError(f"unknown search method {method!r}; available: {', '.join(SEARCH_METHODS)}") from None
    if k < 1:
        raise UsageError(f"top-k must be >= 1, got {k}")
    queries = np.atleast_2d(np.asarray(queries, np.float32))
    if queries.shape[1] != gallery.shape[1]:
        raise UsageError(f"queries have {queries.shape[1]} dimensions, the gallery {gallery.shape[1]}")
    return searcher(gallery, queries, k)

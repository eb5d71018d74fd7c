"""Retrieval on the device: gallery files of embeddings, nearest-neighbour search, retrieval metrics, t-SNE maps.

TensorFlow-free: embeddings come from an embedding bundle through `edgecnn.runtime` (an Embedder).
"""

from edgecnn.retrieval.gallery import Gallery, bundle_fingerprint, load_gallery, save_gallery
from edgecnn.retrieval.index import build_gallery, embed_images
from edgecnn.retrieval.metrics import RetrievalReport, retrieval_report
from edgecnn.retrieval.search import SEARCH_METHODS, search

__all__ = [
    "SEARCH_METHODS", "Gallery", "RetrievalReport", "build_gallery", "bundle_fingerprint", "embed_images",
    "load_gallery", "retrieval_report", "save_gallery", "search",
]

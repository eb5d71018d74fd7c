"""`edgecnn search GALLERY QUERY --bundle BUNDLE`: the gallery images nearest to a query image, with a PNG grid."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgecnn.commands.arguments import positive_int

COLUMNS = [("rank", "rank", "{}"), ("similarity", "cosine", "{:.4f}"), ("label", "class", "{}"), ("path", "file", "{}")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edgecnn.retrieval import SEARCH_METHODS

    parser.add_argument("gallery", metavar="GALLERY", help="gallery file written by `edgecnn index`")
    parser.add_argument("query", metavar="QUERY", help="query image file")
    parser.add_argument("--bundle", metavar="BUNDLE",
                        help="embedding bundle to embed the query with (default: the one the gallery records, "
                        "when that directory still exists)")
    parser.add_argument("--top-k", type=positive_int, default=5, help="neighbours to show (default 5)")
    parser.add_argument("--method", choices=list(SEARCH_METHODS), default="exact",
                        help="exact numpy search (default) or approximate faiss HNSW (pip install 'edgecnn[ann]')")
    parser.add_argument("--grid", metavar="PNG", help="where to write the query + neighbours grid "
                        "(default: <query name>-neighbours.png in the current directory)")
    parser.add_argument("--json", action="store_true", help="print the neighbours as JSON")


def run(args: argparse.Namespace) -> int:
    from edgecnn.commands.embedding_bundle import load_embedder
    from edgecnn.errors import UsageError
    from edgecnn.report import format_table
    from edgecnn.retrieval import load_gallery, search
    from edgecnn.retrieval.grid import neighbour_grid
    from edgecnn.runtime import read_image

    gallery = load_gallery(args.gallery)
    bundle = args.bundle or gallery.bundle.get("path")
    if not bundle:
        raise UsageError(f"{args.gallery} records no bundle directory; pass --bundle BUNDLE")
    embedder = load_embedder(bundle)
    load_gallery(args.gallery, embedder)  # refuses a gallery built with another bundle
    query = embedder.embed_image(read_image(args.query))
    indices, scores = search(gallery.embeddings, query[None], args.top_k, args.method)
    labels = gallery.label_names(indices[0])
    rows = [{"rank": rank + 1, "similarity": float(score), "label": label, "path": gallery.paths[i]}
            for rank, (i, score, label) in enumerate(zip(indices[0], scores[0], labels))]
    grid = Path(args.grid) if args.grid else Path(f"{Path(args.query).stem}-neighbours.png")
    neighbour_grid(args.query, [(r["path"], r["label"], r["similarity"]) for r in rows], grid)
    if args.json:
        print(json.dumps({"query": args.query, "neighbours": rows, "grid": str(grid)}, indent=2))
        return 0
    print(f"{len(gallery)} gallery images, {args.method} search, bundle {embedder.manifest.name}")
    print(format_table(rows, COLUMNS))
    print(f"\nwrote {grid}")
    return 0

"""`edgecnn index BUNDLE --data DIR --out gallery.npz`: embed a folder of images into a gallery file for search."""

from __future__ import annotations

import argparse

from edgecnn.commands.arguments import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="embedding bundle (`edgecnn export RUN --task embed`)")
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="images to index: DIR/<class>/* (labelled) or image files directly in DIR")
    parser.add_argument("--out", default="gallery.npz", metavar="FILE", help="gallery file (default gallery.npz)")
    parser.add_argument("--threads", type=positive_int, help="interpreter threads (default: the runtime's choice)")


def run(args: argparse.Namespace) -> int:
    from edgecnn.commands.embedding_bundle import load_embedder
    from edgecnn.retrieval import build_gallery, save_gallery

    embedder = load_embedder(args.bundle, args.threads)
    gallery, skipped = build_gallery(embedder, args.data)
    path = save_gallery(gallery, args.out)
    classes = f"{len(gallery.class_names)} classes" if gallery.class_names else "unlabelled"
    print(f"indexed {len(gallery)} images ({classes}) from {args.data} with {embedder.manifest.name}: "
          f"{gallery.embeddings.shape[1]}-d embeddings → {path}")
    if skipped:
        print(f"skipped {len(skipped)} files:")
        for entry in skipped:
            print(f"  {entry.path}: {entry.reason}")
    return 0

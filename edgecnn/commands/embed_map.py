"""`edgecnn embed-map BUNDLE`: t-SNE maps of an embedding bundle's features and of raw pixels, coloured by class."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgecnn.commands.arguments import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edgecnn.commands.eval import SPLITS

    parser.add_argument("bundle", metavar="BUNDLE", help="embedding bundle (`edgecnn export RUN --task embed`)")
    parser.add_argument("--data", metavar="PATH", help="labelled images (default: the data the bundle was trained on)")
    parser.add_argument("--source", metavar="SOURCE", help="data source of --data: folder, idx or builtin")
    parser.add_argument("--split", choices=SPLITS, default="test", help="which part to map (default test)")
    parser.add_argument("--per-class", type=positive_int, default=200,
                        help="images sampled per class (default 200; t-SNE time grows with the square)")
    parser.add_argument("--out", metavar="DIR", default=".",
                        help="where to write embed-map.png and pixel-map.png (default: the current directory)")
    parser.add_argument("--no-pixels", dest="pixels", action="store_false",
                        help="skip the raw-pixel map drawn for comparison")
    parser.add_argument("--seed", type=int, default=0, help="sampling and t-SNE seed")


def run(args: argparse.Namespace) -> int:
    from edgecnn.commands.embedding_bundle import load_embedder
    from edgecnn.commands.eval import data_settings, select_split
    from edgecnn.data import load_splits
    from edgecnn.retrieval import embed_images
    from edgecnn.retrieval.maps import sample_per_class, tsne_map

    embedder = load_embedder(args.bundle)
    splits = load_splits(**data_settings(embedder, args.data, args.source, args.split))
    image_set = select_split(splits, args.split)
    chosen = image_set.subset(sample_per_class(image_set.labels, args.per_class, args.seed))
    out = Path(args.out)
    name = embedder.manifest.name
    embeddings = embed_images(embedder, chosen.images)
    written = [tsne_map(embeddings, chosen.labels, chosen.class_names, out / "embed-map.png",
                        f"t-SNE of {name} embeddings ({len(chosen)} {args.split} images)", args.seed)]
    if args.pixels:
        pixels = chosen.images.reshape(len(chosen), -1).astype("float32") / 255.0
        written.append(tsne_map(pixels, chosen.labels, chosen.class_names, out / "pixel-map.png",
                                f"t-SNE of raw pixels ({len(chosen)} {args.split} images)", args.seed))
    print(f"mapped {len(chosen)} {args.split} images ({len(chosen.class_names)} classes)")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0

"""edgecnn: from a folder of labelled images to a fast, verified CNN on an edge device."""

__version__ = "0.1.0"

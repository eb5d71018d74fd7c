"""Saving Keras models atomically (a crash never leaves a half-written model.keras)."""

from __future__ import annotations

from pathlib import Path

import keras

from edgecnn.atomic import temporary_sibling


def save_model(model: keras.Model, path: Path) -> None:
    """model.save through a temporary sibling of the same name (Keras insists on the .keras suffix)."""
    with temporary_sibling(path) as tmp:
        model.save(tmp)

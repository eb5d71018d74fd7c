"""Checks that loaded data can train and evaluate a classifier; each failure is a DataError saying what to change."""

from __future__ import annotations

from collections import Counter

from edgecnn.data.dataset import ImageSet, Skipped
from edgecnn.errors import DataError

MIN_CLASSES = 2


def check_class_count(origin: str, class_names: list[str]) -> None:
    """A classifier needs two classes at least; one class would 'train' to a trivial 100 %."""
    if len(class_names) < MIN_CLASSES:
        found = f"1 class ({class_names[0]!r})" if class_names else "no classes"
        raise DataError(
            f"{origin}: found {found}; a classifier needs at least {MIN_CLASSES} classes "
            "(image folders: one sub-folder per class)"
        )


def check_readable(origin: str, part: str, images: ImageSet, skipped: list[Skipped]) -> None:
    """Every class has readable images in `part` (as the source delivered it, before any split is cut)."""
    if len(images) == 0:
        raise DataError(f"{origin}: no readable images found in {part} ({describe_skipped(skipped) or 'no files'})")
    empty = [name for name, count in images.class_counts().items() if count == 0]
    if empty:
        detail = describe_skipped(skipped)
        raise DataError(
            f"{origin}: {_classes(empty)} no readable images in {part}; add images or remove the class"
            + (f" ({detail})" if detail else "")
        )


def check_cut(origin: str, before: ImageSet, parts: dict[str, ImageSet], fractions: dict[str, float]) -> None:
    """The splits cut out of `before` with `fractions` are not empty, and every class keeps training images."""
    largest = max(before.class_counts().items(), key=lambda item: item[1])
    for split, fraction in fractions.items():
        if fraction > 0 and len(parts[split]) == 0:
            raise DataError(
                f"{origin}: the {split} split is empty: {split}_fraction {fraction} of each class rounds to 0 images "
                f"(the largest class, {largest[0]!r}, has {largest[1]}); each class needs at least "
                f"{_images_for_one(fraction)} images for {split}_fraction {fraction}, or raise the fraction"
            )
    left = parts["train"].class_counts()
    emptied = [name for name, count in left.items() if count == 0]
    if emptied:
        counts = before.class_counts()
        shown = ", ".join(f"{name!r} ({counts[name]})" for name in emptied)
        cut = " and ".join(f"{split}_fraction {fraction}" for split, fraction in fractions.items())
        raise DataError(
            f"{origin}: {cut} take every image of class {shown}, leaving it no training images; "
            "add images to it or lower the fractions"
        )


def check_provided(origin: str, parts: dict[str, ImageSet]) -> None:
    """A split the source ships (a val/ or test/ folder) must hold images; an empty one is a mistake, not a choice."""
    for split, images in parts.items():
        if split != "train" and len(images) == 0:
            raise DataError(
                f"{origin}: the {split} split the data provides (e.g. a {split}/ folder) holds no readable images; "
                f"add images or remove it to have {split} cut out of train"
            )


def describe_skipped(skipped: list[Skipped]) -> str:
    """'5 files skipped: 3× not an image file, 2× unreadable image; first: PATH (REASON)', or '' when none was."""
    if not skipped:
        return ""
    kinds = Counter(s.reason.split(":")[0].split(" (")[0] for s in skipped)
    breakdown = ", ".join(f"{count}× {kind}" for kind, count in kinds.most_common())
    return f"{len(skipped)} files skipped: {breakdown}; first: {skipped[0].path} ({skipped[0].reason})"


def _classes(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names)
    return f"class {shown} has" if len(names) == 1 else f"classes {shown} have"


def _images_for_one(fraction: float) -> int:
    """The smallest class size whose `fraction` rounds (as stratified_split rounds) to one image or more."""
    return next(n for n in range(1, 1_000_001) if int(round(fraction * n)) >= 1)


"""The one geometric preprocessing step, shared by training, evaluation, export checks and the device.

Models take uint8 RGB at a fixed size; normalisation lives inside the model. Everything outside the graph is
here: decoding a file, colour conversion to RGB and the resize (or resize + centre crop) to the model size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import numpy as np

from edgecnn.errors import ImageDecodeError  # re-exported: edgecnn.runtime.preprocess.ImageDecodeError

ResizeMode = Literal["stretch", "center_crop"]
RESIZE_MODES: tuple[str, ...] = get_args(ResizeMode)
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file into uint8 RGB (H, W, 3); raise ImageDecodeError when it is not an image."""
    import cv2  # imported on first use: predict() on images already at the model size never needs OpenCV

    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode handles non-ASCII paths
    if data.size == 0:
        raise ImageDecodeError(f"{path}: empty file")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageDecodeError(f"{path}: not a decodable image ({data.size} bytes)")
    return to_rgb(image, bgr=True)


def to_rgb(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Convert grey, grey+alpha, RGB(A) or BGR(A) uint8 (or 16-bit) pixels to 3-channel RGB."""
    import cv2

    image = _checked_pixels(image)
    if image.dtype == np.uint16:  # 16-bit PNGs: keep the top byte
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 2:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr else image
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    raise ImageDecodeError(f"expected 1-4 channels, got shape {image.shape}")


def _checked_pixels(image: object) -> np.ndarray:
    """`image` as a non-empty (H, W) or (H, W, C) uint8/uint16 array, or ImageDecodeError saying what it is."""
    if image is None:
        raise ImageDecodeError("expected an image array, got None (cv2.imread returns None for an unreadable file)")
    if not isinstance(image, np.ndarray):
        raise ImageDecodeError(f"expected an image as a numpy array, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        hint = "; scale [0, 1] floats with (image * 255).astype(np.uint8)" if image.dtype.kind == "f" else ""
        raise ImageDecodeError(f"expected uint8 pixels, got dtype {image.dtype}{hint}")
    if image.ndim not in (2, 3):
        raise ImageDecodeError(f"expected one image of shape (H, W) or (H, W, C), got shape {image.shape}")
    if image.size == 0:
        raise ImageDecodeError(f"empty image: shape {image.shape} has no pixels")
    return image


def fit_image(image: np.ndarray, size: tuple[int, int], mode: ResizeMode = "stretch") -> np.ndarray:
    """Resize an RGB uint8 image to `size` (height, width).

    `stretch` resizes directly; `center_crop` scales the shorter side to fit and crops the centre, keeping the
    aspect ratio. Area interpolation when shrinking (no aliasing), bilinear when enlarging.
    """
    height, width = size
    image = to_rgb(image)
    if mode == "center_crop":
        scale = max(height / image.shape[0], width / image.shape[1])
        scaled_h = max(height, round(image.shape[0] * scale))
        scaled_w = max(width, round(image.shape[1] * scale))
        image = _resize(image, scaled_h, scaled_w)
        top = (scaled_h - height) // 2
        left = (scaled_w - width) // 2
        return np.ascontiguousarray(image[top : top + height, left : left + width])
    if mode == "stretch":
        return _resize(image, height, width)
    raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")


def fit_batch(images: np.ndarray, size: tuple[int, int], mode: ResizeMode = "stretch") -> np.ndarray:
    """fit_image over a batch (N, H, W[, C]) → (N, height, width, 3) uint8."""
    if images.ndim == 4 and images.shape[1:3] == tuple(size) and images.shape[3] == 3:
        return np.ascontiguousarray(images, dtype=np.uint8)
    return np.stack([fit_image(image, size, mode) for image in images]) if len(images) else np.zeros(
        (0, *size, 3), np.uint8
    )


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    if image.shape[:2] == (height, width):
        return image
    shrinking = height * width < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def model_batch(images: np.ndarray, size: tuple[int, int], method: str, instead: str) -> np.ndarray:
    """`images` as a (N, height, width, 3) uint8 batch at the model size, or a ValueError naming `method` and the
    call to use `instead` for images of other sizes."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    expected = (*size, 3)
    if images.ndim != 4 or images.shape[1:] != expected:
        raise ValueError(
            f"{method} expects uint8 images of shape (N, {expected[0]}, {expected[1]}, 3), got {images.shape};"
            f" use {instead} or edgecnn.runtime.preprocess.fit_image for other sizes"
        )
    if images.dtype != np.uint8:
        raise ValueError(f"{method} expects uint8 RGB pixels, got dtype {images.dtype}")
    return images

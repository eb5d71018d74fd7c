"""Feeding uint8 pixels to float or quantised model inputs, and reading quantised outputs back as floats."""

from __future__ import annotations

import numpy as np


def quantize(pixels: np.ndarray, dtype: np.dtype | type, params: tuple[float, int]) -> np.ndarray:
    """Convert uint8 pixel values (0..255) to the model's input dtype using its (scale, zero_point)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return pixels.astype(dtype)
    scale, zero_point = params
    if scale == 0:  # not quantised: an integer input that takes raw values
        return pixels.astype(dtype)
    if dtype == np.uint8 and abs(scale - 1.0) < 1e-6 and zero_point == 0:
        return pixels.astype(np.uint8, copy=False)
    info = np.iinfo(dtype)
    values = np.round(pixels.astype(np.float32) / scale + zero_point)
    return np.clip(values, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, params: tuple[float, int]) -> np.ndarray:
    """Convert a model output to float32 using its (scale, zero_point); float outputs pass through."""
    if values.dtype.kind == "f":
        return values.astype(np.float32, copy=False)
    scale, zero_point = params
    if scale == 0:
        return values.astype(np.float32)
    return (values.astype(np.float32) - zero_point) * scale

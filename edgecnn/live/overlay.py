"""The overlay drawn on each shown frame (label, probability, fps, latency) and its JPEG encoding, with OpenCV."""

from __future__ import annotations

import cv2
import numpy as np

JPEG_QUALITY = 80
WHITE, AMBER, BLACK = (255, 255, 255), (0, 191, 255), (0, 0, 0)  # BGR


def draw(frame_rgb: np.ndarray, headline: str, detail: str, uncertain: bool = False) -> np.ndarray:
    """A BGR copy of the frame with `headline` (the label) and `detail` (fps, latency) on a dark band."""
    image = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    height, width = image.shape[:2]
    scale = max(0.4, width / 640)
    band = int(58 * scale)
    cv2.rectangle(image, (0, 0), (width, min(band, height)), BLACK, thickness=-1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, headline, (int(8 * scale), int(26 * scale)), font, 0.8 * scale, AMBER if uncertain else WHITE,
                max(1, int(2 * scale)), cv2.LINE_AA)
    cv2.putText(image, detail, (int(8 * scale), int(50 * scale)), font, 0.55 * scale, WHITE, max(1, int(scale)),
                cv2.LINE_AA)
    return image


def encode_jpeg(image_bgr: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, data = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode a {image_bgr.shape} frame as JPEG")
    return data.tobytes()

"""`--view window`: an OpenCV window; explains itself when OpenCV was built without a GUI (the headless wheel)."""

from __future__ import annotations

import re

import cv2
import numpy as np

from edgecnn.errors import MissingDependencyError


def has_gui() -> bool:
    """Whether this OpenCV build can open windows (opencv-python-headless cannot)."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.M)
    return bool(match) and match.group(1).upper() != "NONE"


class WindowView:
    """Shows overlaid frames in a window; `q` or Esc stops the run."""

    wants_frames = True

    def __init__(self, title: str = "edgecnn live"):
        if not has_gui():
            raise MissingDependencyError(
                "--view window needs OpenCV with a GUI, but this OpenCV has none (opencv-python-headless, the base "
                "install's wheel). Use --view web and open the page in a browser, or install the GUI wheel "
                "instead: pip uninstall opencv-python-headless && pip install opencv-python"
            )
        self.title = title
        self.quit_requested = False

    def start(self) -> str:
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        return f"window {self.title!r} (q to quit)"

    def show(self, image_bgr: np.ndarray) -> None:
        cv2.imshow(self.title, image_bgr)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.quit_requested = True

    def close(self) -> None:
        cv2.destroyAllWindows()

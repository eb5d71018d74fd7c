"""Live classification of a camera, stream, video file or slideshow on the device (runtime only, no TensorFlow).

A capture thread puts (seq, capture time, frame) into a mailbox (`mailbox.py`); the inference loop
(`pipeline.py`) takes the newest frame, classifies it with the bundle's own preprocessing and hands the result to
the statistics (`stats.py`), the record file, and an optional view (`overlay.py`, `web.py`, `window.py`). Sources
(`sources/`) are one module each behind a table; faults (disconnects, hung reads) are handled in `faults.py` and
`capture.py`.
"""

from edgecnn.live.pipeline import LiveConfig, LiveRun, run_live

__all__ = ["LiveConfig", "LiveRun", "run_live"]

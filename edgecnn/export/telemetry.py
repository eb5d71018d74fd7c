"""edgecnn sends no telemetry, and neither may the libraries it drives.

OpenVINO's converter and NNCF report usage to an analytics service unless the user opted out: with no consent
file they count as consenting. Both honour their own `disable_in_ci` switch, which reads the environment variable
CI=true when their telemetry object is created (openvino_telemetry.utils.opt_in_checker). Setting it only for the
duration of a conversion keeps them silent without writing the user's global opt-out file on their behalf.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def telemetry_disabled() -> Iterator[None]:
    """Run the block with the libraries' CI switch on, restoring the environment afterwards."""
    previous = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = previous

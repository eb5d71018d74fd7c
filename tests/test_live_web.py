"""`--view web`: the MJPEG stream, /metrics and /healthz over HTTP, loopback by default, a real headless Chromium,
and a second `edgecnn live` that reads the first one's stream as its source."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.live import LiveConfig, LiveRun
from edgecnn.live.sources import SourceOptions
from edgecnn.live.sources.synthetic import SyntheticSource
from edgecnn.live.web import BOUNDARY, LOOPBACK, WebView
from edgecnn.runtime import load

CHROMIUM = "/usr/bin/chromium"
RED = "255.0.0"  # a colour whose class changes if red and blue get swapped anywhere on the way


class Served:
    """A LiveRun with a web view on a free port, running in a thread."""

    def __init__(self, bundle: Path, spec: str, max_clients: int = 4):
        predictor = load(bundle, threads=1)
        source = SyntheticSource(spec, SourceOptions())
        self.live = LiveRun(predictor, lambda: source, reconnects=True, config=LiveConfig(duration_s=60))
        self.live.open()
        self.view = WebView(self.live.summary, port=0, max_clients=max_clients)
        self.live.attach(self.view)
        self.host, self.port = self.view.address
        self.thread = threading.Thread(target=self.live.run, daemon=True)
        self.thread.start()

    def get(self, path: str, method: str = "GET") -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        connection.request(method, path)
        return connection.getresponse()

    def stop(self) -> None:
        self.live.stop("test")
        self.thread.join(10)


@pytest.fixture
def served(bundles: dict[str, Path]) -> Iterator[Served]:
    server = Served(bundles["int8"], f"synthetic:colours={RED},size=160x120,fps=30", max_clients=2)
    yield server
    server.stop()


def read_parts(response: http.client.HTTPResponse, count: int) -> list[bytes]:
    """`count` JPEG parts of a multipart/x-mixed-replace response."""
    parts = []
    while len(parts) < count:
        line = response.readline()
        if line.strip() != f"--{BOUNDARY}".encode():
            continue
        headers = {}
        while (line := response.readline().strip()):
            key, _, value = line.decode().partition(":")
            headers[key.lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        parts.append(response.read(int(headers["content-length"])))
    return parts


def test_stream_parts_decode_as_jpeg_and_metrics_and_health_parse(served: Served):
    stream = served.get("/stream.mjpg")
    assert stream.status == 200
    assert stream.getheader("Content-Type") == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
    frames = [cv2.imdecode(np.frombuffer(part, np.uint8), cv2.IMREAD_COLOR) for part in read_parts(stream, 3)]
    assert all(frame is not None and frame.shape == (120, 160, 3) for frame in frames)
    body = frames[-1][80:, :, :].reshape(-1, 3).mean(axis=0)  # below the overlay band: the frame itself, BGR
    assert body[2] > 150 and body[0] < 80, f"red frame came back as BGR mean {body}"

    metrics = json.loads(served.get("/metrics").read())
    assert metrics["frames"]["inferred"] > 0 and metrics["state"] == "running"
    assert metrics["label"] == "red"
    health = served.get("/healthz")
    assert health.status == 200 and json.loads(health.read()) == {"ok": True, "state": "running"}
    assert served.get("/", "POST").status == 405  # read-only
    assert served.get("/nothing").status == 404
    page = served.get("/").read().decode()
    assert '<img src="/stream.mjpg"' in page
    stream.close()


def test_stream_clients_are_capped_and_frames_are_encoded_only_while_one_watches(served: Served):
    import time

    time.sleep(0.3)
    assert served.view.frames_encoded == 0  # nobody watching: nothing drawn or encoded
    first, second = served.get("/stream.mjpg"), served.get("/stream.mjpg")
    read_parts(first, 1)
    assert served.get("/stream.mjpg").status == 503  # max_clients=2
    assert served.view.frames_encoded > 0
    first.close()
    second.close()


def test_web_view_binds_loopback_by_default_and_warns_for_other_addresses(capsys: pytest.CaptureFixture[str]):
    import argparse

    from edgecnn.commands.live import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["bundle"]).host == LOOPBACK
    view = WebView(dict, port=0)
    assert view.address[0] == LOOPBACK
    view.close()
    assert "warning" not in capsys.readouterr().err
    exposed = WebView(dict, host="0.0.0.0", port=0)
    exposed.close()
    assert "warning: the web view listens on 0.0.0.0" in capsys.readouterr().err


def test_headless_chromium_shows_the_overlaid_label(served: Served, tmp_path: Path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium); CI installs it")
    screenshot = tmp_path / "out.png"
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        subprocess.run([
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--screenshot={screenshot}", "--window-size=800,600", "--timeout=5000",
            f"http://{served.host}:{served.port}/",
        ], capture_output=True, timeout=60, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    image = cv2.imread(str(screenshot))
    shutil.copy(screenshot, Path(tempfile.gettempdir()) / "edgecnn-live-chromium.png")  # to look at by hand
    assert image is not None and image.shape[:2] == (600, 800)
    # The page shows the 160x120 frame at the top left (8 px margin): a black band with white text on a red frame.
    band = image[10:22, 10:160]
    body = image[60:120, 20:160].reshape(-1, 3).mean(axis=0)
    assert (band.max(axis=2) < 60).mean() > 0.5, "no dark overlay band"
    assert (band.min(axis=2) > 180).sum() > 20, "no white label text in the overlay band"
    assert body[2] > 150 and body[0] < 80, f"the frame is not red on the page (BGR mean {body})"


def test_second_live_reads_the_first_ones_mjpeg_stream(served: Served, tmp_path: Path):
    record = tmp_path / "second.jsonl"
    result = subprocess.run([
        sys.executable, "-m", "edgecnn.cli", "live", str(served.live.predictor.path.parent), "--source",
        f"http://{served.host}:{served.port}/stream.mjpg", "--duration", "3", "--record", str(record),
        "--out", str(tmp_path), "--quiet",
    ], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    second = json.loads((tmp_path / "live.json").read_text())
    assert second["source"]["granted"]["backend"] == "FFMPEG"
    assert second["frames"]["inferred"] > 10
    labels = [json.loads(line)["top"][0][0] for line in record.read_text().splitlines()]
    assert labels.count("red") / len(labels) > 0.9, labels


def test_a_port_in_use_fails_before_the_source_opens(bundles: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]):
    from edgecnn.cli import main

    holder = WebView(dict, port=0)
    try:
        code = main(["live", str(bundles["int8"]), "--source", "/dev/video9", "--view", "web", "--port",
                     str(holder.address[1]), "--out", str(tmp_path), "--quiet"])
    finally:
        holder.close()
    error = capsys.readouterr().err
    assert code == 2 and "cannot listen on 127.0.0.1" in error and "video9" not in error

"""edgecnn.live building blocks without a model: mailbox, backoff, truth file, decisions, sources, imports."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgecnn.errors import DataError, MissingDependencyError
from edgecnn.live.faults import Backoff
from edgecnn.live.mailbox import FifoMailbox, LatestFrameMailbox, Packet
from edgecnn.live.results import Smoother, decide
from edgecnn.live.sources import SOURCES, SourceOptions, source_kind
from edgecnn.live.sources.synthetic import SyntheticSource, frame_index
from edgecnn.live.truth import load_truth

FRAME = np.zeros((2, 2, 3), np.uint8)


def _packet(seq: int) -> Packet:
    return Packet(seq, time.monotonic(), time.time(), FRAME)


def test_latest_frame_mailbox_never_yields_a_frame_twice_and_counts_every_unseen_frame_as_dropped():
    mailbox = LatestFrameMailbox()
    total = 3000
    rng = random.Random(0)

    def produce() -> None:
        for seq in range(total):
            mailbox.put(_packet(seq))
            if rng.random() < 0.3:
                time.sleep(0)  # let the reader in at irregular points
        mailbox.close()

    producer = threading.Thread(target=produce)
    producer.start()
    seen = []
    while not mailbox.finished:
        packet = mailbox.get(timeout=0.5)
        if packet is not None:
            seen.append(packet.seq)
            if rng.random() < 0.5:
                time.sleep(0.0002)  # a slow inference lets frames pile up
    producer.join()
    assert seen == sorted(set(seen)), "a frame was taken twice or out of order"
    assert mailbox.put_count == total
    assert mailbox.taken == len(seen)
    assert mailbox.dropped == total - len(seen) == len(set(range(total)) - set(seen))
    assert 0 < mailbox.dropped < total  # the test did exercise dropping
    assert mailbox.get(timeout=0.01) is None


def test_latest_frame_mailbox_discard_counts_the_waiting_frame():
    mailbox = LatestFrameMailbox()
    mailbox.put(_packet(0))
    mailbox.put(_packet(1))
    assert mailbox.discard() == 1
    assert mailbox.dropped == 2 and mailbox.get(0.01) is None


def test_fifo_mailbox_keeps_every_frame_in_order_and_blocks_when_full():
    mailbox = FifoMailbox(capacity=4)
    for seq in range(4):
        assert mailbox.put(_packet(seq))
    blocked = threading.Thread(target=mailbox.put, args=(_packet(4),))
    blocked.start()
    blocked.join(0.1)
    assert blocked.is_alive(), "put did not wait for room"
    taken = [mailbox.get(0.1).seq for _ in range(5)]
    blocked.join(1)
    assert taken == [0, 1, 2, 3, 4] and mailbox.dropped == 0


def test_backoff_doubles_to_the_cap_with_jitter_below_each_step():
    backoff = Backoff(base_s=0.1, cap_s=1.0, jitter=0.5, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(6)]
    for step, delay in enumerate(delays):
        ceiling = min(1.0, 0.1 * 2**step)
        assert ceiling * 0.5 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered, not lockstep
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_truth_csv_takes_names_or_indices_and_leaves_gaps_unscored(tmp_path: Path):
    path = tmp_path / "truth.csv"
    path.write_text("first_frame,last_frame,label\n0,9,red\n20,29,0\n")
    truth = load_truth(path, ["blue", "green", "red"])
    assert [truth.label_of(f) for f in (0, 9, 10, 19, 20, 29, 30)] == [2, 2, None, None, 0, 0, None]


@pytest.mark.parametrize(("text", "message"), [
    ("0,9,purple\n", "label 'purple'"),
    ("0,9,red\n5,12,blue\n", "overlap"),
    ("9,0,red\n", "first_frame <= last_frame"),
    ("0,9\n", "expected first_frame,last_frame,label"),
])
def test_truth_csv_errors_name_the_problem(tmp_path: Path, text: str, message: str):
    path = tmp_path / "truth.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        load_truth(path, ["blue", "green", "red"])


def test_decide_marks_low_confidence_uncertain_and_smoothing_averages():
    labels = ["a", "b", "c"]
    decision = decide(np.array([0.2, 0.5, 0.3], np.float32), labels, top_k=2, min_confidence=0.6)
    assert [label for _, label, _ in decision.top] == ["b", "c"]
    assert decision.uncertain and decision.shown == "uncertain (b?)"
    smoother = Smoother(0.5)
    smoother(np.array([1.0, 0.0, 0.0], np.float32))
    np.testing.assert_allclose(smoother(np.array([0.0, 1.0, 0.0], np.float32)), [0.5, 0.5, 0.0])


@pytest.mark.parametrize(("spec", "kind"), [
    ("0", "camera"), ("/dev/video2", "camera"), ("rtsp://cam.local/stream", "stream"),
    ("http://127.0.0.1:8080/stream.mjpg", "stream"), ("picamera2", "picamera2"), ("synthetic:fps=5", "synthetic"),
    ("shots/*.jpg", "images"),
])
def test_source_table_picks_the_kind(spec: str, kind: str):
    assert source_kind(spec).name == kind


def test_source_kind_of_files_and_folders(tmp_path: Path):
    (tmp_path / "clip.avi").write_bytes(b"x")
    assert source_kind(str(tmp_path / "clip.avi")).name == "video"
    assert source_kind(str(tmp_path)).name == "images"
    with pytest.raises(DataError, match="no such file, folder, camera or URL"):
        source_kind(str(tmp_path / "missing.mp4"))
    assert set(SOURCES) == {"camera", "stream", "picamera2", "synthetic", "images", "video"}


def test_synthetic_source_delivers_on_its_clock_and_tags_frames():
    source = SyntheticSource("synthetic:fps=200,size=32x24,frames=20", SourceOptions())
    source.open()
    frames = [source.read() for _ in range(10)]
    assert frames[0].shape == (24, 32, 3)
    indices = [frame_index(frame) for frame in frames]
    assert indices == sorted(set(indices)) and indices == source.delivered_indices


def test_picamera2_missing_says_it_comes_from_apt_with_system_site_packages(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` raise ImportError
    from edgecnn.live.sources import open_source

    with pytest.raises(MissingDependencyError, match="apt.*--system-site-packages"):
        open_source("picamera2", SourceOptions())


def test_picamera2_rgb888_is_bgr_in_memory_and_comes_out_rgb(monkeypatch: pytest.MonkeyPatch):
    import types

    class FakePicamera2:  # the calls the source makes, with libcamera's RGB888 layout (B, G, R bytes)
        def create_video_configuration(self, main, controls):
            self.main = main
            return {"main": main}

        def configure(self, config):
            pass

        def start(self):
            pass

        def camera_configuration(self):
            return {"main": self.main}

        def capture_array(self, stream):
            frame = np.zeros((self.main["size"][1], self.main["size"][0], 3), np.uint8)
            frame[..., 0] = 255  # blue first in memory: the scene is blue
            return frame

        def stop(self):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    from edgecnn.live.sources import open_source

    source, kind = open_source("picamera2", SourceOptions(width=64, height=48, fps=30))
    assert kind.reconnects and source.open()["width"] == 64
    frame = source.read()
    assert frame.shape == (48, 64, 3) and tuple(frame[0, 0]) == (0, 0, 255)  # RGB: blue
    source.close()


def test_window_view_explains_a_headless_opencv():
    from edgecnn.live.window import WindowView, has_gui

    if has_gui():
        pytest.skip("this OpenCV has a GUI")
    with pytest.raises(MissingDependencyError, match="--view web"):
        WindowView()


LIVE_IMPORT_CHECK = """
import sys
import edgecnn.live, edgecnn.live.web, edgecnn.live.window, edgecnn.live.overlay, edgecnn.devices
import edgecnn.commands.live, edgecnn.commands.devices
from edgecnn.live.sources import SOURCES, SourceOptions, open_source
import importlib
for kind in SOURCES.values():
    importlib.import_module(kind.module)
from edgecnn.live import LiveConfig, LiveRun
from edgecnn.runtime import load
predictor = load(sys.argv[1])
live = LiveRun(predictor, lambda: open_source("synthetic:fps=100,size=64x48", SourceOptions())[0], True,
               LiveConfig(max_frames=10))
live.open()
summary = live.run()
assert summary["frames"]["inferred"] == 10, summary
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print("HEAVY", heavy)
"""


def test_live_and_devices_import_no_tensorflow(bundles: dict[str, Path]):
    """The live runner, every source module and the device profiles run on a device without TensorFlow/Keras."""
    result = subprocess.run([sys.executable, "-c", LIVE_IMPORT_CHECK, str(bundles["int8"])], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout

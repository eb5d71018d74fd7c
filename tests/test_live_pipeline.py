"""The live loop on synthetic sources: reconnects without inferring the gap, the hung-read watchdog, bad frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecnn.live import LiveConfig, LiveRun
from edgecnn.live.faults import Backoff
from edgecnn.live.mailbox import Packet
from edgecnn.live.sources import SourceOptions
from edgecnn.live.sources.synthetic import SyntheticSource, frame_index
from edgecnn.runtime import load

FAST_BACKOFF = dict(base_s=0.05, cap_s=0.2)


class TracingRun(LiveRun):
    """A LiveRun that remembers which synthetic frame index each inferred frame had, and its size."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inferred: list[tuple[int, tuple[int, ...]]] = []

    def _process(self, packet: Packet, wait_ms: float, taken: float) -> None:
        self.inferred.append((frame_index(packet.frame), packet.frame.shape))
        super()._process(packet, wait_ms, taken)


@pytest.fixture(scope="module")
def predictor(bundles: dict[str, Path]):
    return load(bundles["int8"], threads=1)


def test_source_lost_mid_stream_reconnects_and_never_infers_a_frame_from_the_gap(predictor):
    # 50 fps; frames 40..79 are the outage (0.8 s); after it the frame size changes from 64x48 to 80x60.
    source = SyntheticSource("synthetic:fps=50,size=64x48,fail_at=40,fail_for=40,resize_after_fail=80x60",
                             SourceOptions())
    live = TracingRun(predictor, lambda: source, reconnects=True,
                      config=LiveConfig(duration_s=2.6, backoff=Backoff(**FAST_BACKOFF)))
    live.open()
    summary = live.run()

    indices = [index for index, _ in live.inferred]
    assert indices == sorted(set(indices)), "a frame was inferred twice or out of order"
    assert not [i for i in indices if 40 <= i < 80], "a frame from the outage was inferred"
    assert any(i < 40 for i in indices) and any(i >= 80 for i in indices)
    assert set(indices) <= set(source.delivered_indices), "an inferred frame was never delivered by the source"
    assert {shape for i, shape in live.inferred if i >= 80} == {(60, 80, 3)}  # the new size after reconnecting
    assert summary["disconnects"] == 1 and summary["reconnects"] == 1
    assert summary["frames"]["inferred"] == len(indices)
    frames = summary["frames"]
    assert frames["captured"] == frames["inferred"] + frames["dropped"]
    assert summary["stopped_by"] == "duration" and summary["state"] in ("running", "stopped")


def test_hung_read_trips_the_watchdog_and_a_fresh_source_takes_over(predictor):
    made: list[SyntheticSource] = []

    def factory() -> SyntheticSource:
        # The first source hangs for 3 s at frame 10; the ones opened after the watchdog do not.
        spec = "synthetic:fps=50,size=32x24" + (",hang_at=10,hang_s=3" if not made else "")
        made.append(SyntheticSource(spec, SourceOptions()))
        return made[-1]

    live = TracingRun(predictor, factory, reconnects=True,
                      config=LiveConfig(duration_s=2.0, watchdog_s=0.4, backoff=Backoff(**FAST_BACKOFF)))
    live.open()
    summary = live.run()
    assert summary["watchdog_trips"] == 1 and summary["reconnects"] == 1 and len(made) == 2
    after = [index for index, _ in live.inferred][10:]
    assert len(after) > 20, "the run did not resume on the fresh source"
    assert made[0].delivered_indices[-1] <= 10  # nothing from the hung source after the hang got inferred
    assert summary["abandoned_threads"] == 1


def test_undecodable_frames_are_counted_not_fatal(predictor):
    source = SyntheticSource("synthetic:fps=100,size=32x24,frames=30,bad_at=5+6+7", SourceOptions())
    live = LiveRun(predictor, lambda: source, reconnects=False, config=LiveConfig(every_frame=True))
    live.open()
    summary = live.run()
    assert summary["frames"] == {"captured": 27, "inferred": 27, "dropped": 0, "unreadable": 3}
    assert summary["stopped_by"] == "end of stream" and summary["state"] == "ended"


def test_slow_inference_drops_frames_and_counts_them_exactly(predictor, monkeypatch: pytest.MonkeyPatch):
    import time

    original = predictor.predict
    monkeypatch.setattr(predictor, "predict", lambda images: (time.sleep(0.05), original(images))[1])
    source = SyntheticSource("synthetic:fps=100,size=32x24", SourceOptions())
    live = TracingRun(predictor, lambda: source, reconnects=True, config=LiveConfig(duration_s=1.5))
    live.open()
    summary = live.run()
    frames = summary["frames"]
    assert frames["dropped"] > frames["inferred"]  # about 5 frames arrive per inference
    assert frames["captured"] == frames["inferred"] + frames["dropped"]
    # A read in flight when the run stopped is not a captured frame.
    assert len(source.delivered_indices) - frames["captured"] in (0, 1)
    assert summary["staleness_ms"]["p50"] < 15  # the newest frame is taken, not a queued one

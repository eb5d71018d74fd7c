"""`edgecnn live` end to end: a paced video file scored against `edgecnn eval`, SIGTERM mid-run, failing early."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from edgecnn.cli import main
from edgecnn.runtime import read_image

FRAMES_PER_IMAGE = 2
VIDEO_FPS = 30
SCALE = 4  # frames are the fixture's images scaled up, as a camera would see them


def _write_video(image_folder: Path, path: Path) -> tuple[Path, int]:
    """An MJPG video of every readable fixture image (class folders in order), and its truth CSV."""
    classes = sorted(p.name for p in image_folder.iterdir() if p.is_dir())
    writer = None
    rows, frame = [], 0
    for name in classes:
        first = frame
        for file in sorted((image_folder / name).iterdir()):
            try:
                image = read_image(file)
            except ValueError:
                continue  # the fixture's broken files: eval skips them too
            big = cv2.resize(image, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
            if writer is None:
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), VIDEO_FPS,
                                         (big.shape[1], big.shape[0]))
                writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 100)
                assert writer.isOpened()
            for _ in range(FRAMES_PER_IMAGE):
                writer.write(cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
                frame += 1
        rows.append(f"{first},{frame - 1},{name}")
    writer.release()
    truth = path.with_suffix(".csv")
    truth.write_text("first_frame,last_frame,label\n" + "\n".join(rows) + "\n")
    return truth, frame


def test_paced_video_with_truth_matches_eval_top1(bundles: dict[str, Path], image_folder: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]):
    video = tmp_path / "colours.avi"
    truth, frames = _write_video(image_folder, video)
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
    capture.release()

    bundle = str(bundles["int8"])
    started = time.monotonic()
    assert main(["live", bundle, "--source", str(video), "--truth", str(truth), "--out", str(tmp_path / "live"),
                 "--record", str(tmp_path / "frames.jsonl"), "--quiet"]) == 0
    seconds = time.monotonic() - started
    live = json.loads((tmp_path / "live" / "live.json").read_text())
    assert main(["eval", bundle, "--data", str(image_folder), "--split", "all", "--json",
                 "--out", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "eval.json").read_text())
    capsys.readouterr()

    assert live["stopped_by"] == "end of stream"
    assert live["frames"]["captured"] == frames
    assert live["truth"]["scored"] == live["frames"]["inferred"] > 0.5 * frames
    assert abs(live["truth"]["top1"] - evaluated["top1"]) <= 0.01
    assert seconds >= frames / VIDEO_FPS * 0.9, "the file was not paced at its own fps"
    assert live["source"]["granted"]["paced_fps"] == VIDEO_FPS
    lines = (tmp_path / "frames.jsonl").read_text().splitlines()
    assert len(lines) == live["frames"]["inferred"] == live["record_lines"]
    assert all(json.loads(line)["truth"] in ("blue", "green", "red") for line in lines)


def test_every_frame_mode_infers_each_frame_of_a_file_unpaced(bundles: dict[str, Path], image_folder: Path,
                                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    video = tmp_path / "colours.avi"
    truth, frames = _write_video(image_folder, video)
    assert main(["live", str(bundles["int8"]), "--source", str(video), "--truth", str(truth), "--every-frame",
                 "--pace", "fast", "--out", str(tmp_path), "--quiet"]) == 0
    live = json.loads((tmp_path / "live.json").read_text())
    assert live["frames"] == {"captured": frames, "inferred": frames, "dropped": 0, "unreadable": 0}
    assert live["truth"]["scored"] == frames
    assert "stage" in capsys.readouterr().out  # the summary table


def test_sigterm_mid_run_writes_complete_live_json_and_jsonl(bundles: dict[str, Path], tmp_path: Path):
    record = tmp_path / "x.jsonl"
    command = [sys.executable, "-m", "edgecnn.cli", "live", str(bundles["int8"]), "--source",
               "synthetic:fps=60,size=160x120", "--record", str(record), "--out", str(tmp_path / "out"), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not record.exists() or record.read_text().count("\n") < 20):
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    live = json.loads((tmp_path / "out" / "live.json").read_text())
    lines = record.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses
    assert record.read_text().endswith("\n")
    assert live["stopped_by"] == "SIGTERM"
    assert len(records) == live["frames"]["inferred"] == live["record_lines"] >= 20
    assert [r["seq"] for r in records] == sorted({r["seq"] for r in records})
    assert "stopped by SIGTERM" in stdout


def test_a_bundle_that_fails_to_load_fails_before_the_camera_opens(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bundle.json").write_text("{not json")
    # /dev/video9 does not exist here: had the camera been opened first, the error would be about it.
    assert main(["live", str(broken), "--source", "/dev/video9", "--out", str(tmp_path), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "bundle.json" in error and "video9" not in error
    assert not (tmp_path / "live.json").exists()


def test_missing_camera_is_a_one_line_error(bundles: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]):
    assert main(["live", str(bundles["int8"]), "--source", "/dev/video9", "--out", str(tmp_path), "--quiet"]) == 2
    assert "could not open camera /dev/video9" in capsys.readouterr().err


def test_device_profile_supplies_threads_and_flags_override(bundles: dict[str, Path], image_folder: Path,
                                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    slideshow = str(image_folder / "red")
    args = ["live", str(bundles["int8"]), "--source", slideshow, "--fps", "50", "--device", "raspberry-pi-5",
            "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--threads", "1", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    profile_run = json.loads((tmp_path / "a" / "live.json").read_text())
    flag_run = json.loads((tmp_path / "b" / "live.json").read_text())
    assert (profile_run["threads"], profile_run["device"]) == (4, "raspberry-pi-5")
    assert flag_run["threads"] == flag_run["runtime"]["threads"] == 1
    # The slideshow: 12 readable red images plus one broken file, counted as unreadable.
    assert profile_run["frames"]["captured"] == 12 and profile_run["frames"]["unreadable"] == 1
    assert profile_run["label"] == "red"


def test_live_help_lists_the_sources_and_views(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["live", "--help"])
    text = capsys.readouterr().out
    assert "picamera2" in text and "--view" in text and "127.0.0.1" in text

"""Device profiles: every file in devices/ validates, unknown keys and formats are named, `edgecnn devices`."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecnn.cli import main
from edgecnn.devices import DEVICES_DIR, DeviceProfile, list_profiles, load_profile, profile_names
from edgecnn.errors import DeviceProfileError
from edgecnn.formats import FORMATS

VALID = "name: test-board\narch: aarch64\nthreads: 2\ninstall: pip install edgecnn\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "board.yaml"
    path.write_text(text)
    return path


def test_every_shipped_profile_validates_and_is_named_after_its_file():
    profiles = list_profiles()
    assert {p.name for p in profiles} == set(profile_names()) >= {"raspberry-pi-4", "raspberry-pi-5", "x86-laptop"}
    for profile in profiles:
        assert set(profile.runtime_preference) <= set(FORMATS)
        assert profile.threads >= 1 and profile.install.strip()


def test_pi_profiles_install_picamera2_from_apt_into_a_system_site_packages_venv():
    for name in ("raspberry-pi-4", "raspberry-pi-5"):
        install = load_profile(name).install
        assert "apt install -y python3-picamera2" in install and "--system-site-packages" in install
    assert load_profile("raspberry-pi-5").camera.source == "picamera2"


def test_load_by_path_and_defaults(tmp_path: Path):
    profile = load_profile(_write(tmp_path, VALID))
    assert isinstance(profile, DeviceProfile)
    assert profile.runtime_preference == ["tflite"] and profile.camera.source == "0"


@pytest.mark.parametrize(("extra", "message"), [
    ("therads: 4\n", r"therads: unknown key"),
    ("camera:\n  widht: 640\n", r"camera\.widht: unknown key — did you mean 'width'\?"),
    ("runtime_preference: [litert]\n", r"unknown format\(s\) \['litert'\]; known formats: tflite, onnx, openvino"),
    ("camera:\n  fourcc: MJPEG\n", "fourcc must be 4 characters"),
])
def test_invalid_profiles_name_the_field(tmp_path: Path, extra: str, message: str):
    with pytest.raises(DeviceProfileError, match=message):
        load_profile(_write(tmp_path, VALID + extra))


def test_threads_must_be_positive(tmp_path: Path):
    with pytest.raises(DeviceProfileError, match="threads"):
        load_profile(_write(tmp_path, VALID.replace("threads: 2", "threads: 0")))


def test_unknown_name_suggests_the_closest_profile():
    with pytest.raises(DeviceProfileError, match="did you mean 'raspberry-pi-5'"):
        load_profile("raspbery-pi-5")


def test_devices_command_lists_and_shows(capsys: pytest.CaptureFixture[str]):
    assert main(["devices"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in profile_names())
    assert main(["devices", "raspberry-pi-5"]) == 0
    assert "python3-picamera2" in capsys.readouterr().out
    assert main(["devices", "nope"]) == 2
    assert "unknown device 'nope'" in capsys.readouterr().err
    assert DEVICES_DIR.is_dir()

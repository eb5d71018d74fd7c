"""Device profiles (`devices/*.yaml`): threads, runtime preference, camera settings and install notes. A leaf.

Each profile is validated by `DeviceProfile` (unknown keys are errors that name the key), found by name in the
`devices/` folder or by path, and listed by `edgecnn devices`. `edgecnn live --device NAME` reads threads and
camera settings from it; command-line flags override the profile.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edgecnn.errors import DeviceProfileError
from edgecnn.formats import ALL_PRECISIONS, FORMATS


# The repository's devices/ folder (profiles are data, kept beside recipes/, not inside the package).
def _devices_dir() -> Path:
    """The profiles of a source checkout (devices/), else those a pip install put under <prefix>/share/edgecnn."""
    checkout = Path(__file__).resolve().parent.parent / "devices"
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share" / "edgecnn" / "devices"


DEVICES_DIR = _devices_dir()
SUFFIXES = (".yaml", ".yml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class CameraSettings(_Section):
    """What `edgecnn live` asks the camera for; the driver may grant something else, and live reports it."""

    source: str = Field("0", description="camera index, /dev/videoN, picamera2, a URL, a file or a folder")
    width: int | None = Field(None, gt=0, le=8192)
    height: int | None = Field(None, gt=0, le=8192)
    fps: float | None = Field(None, gt=0, le=1000)
    fourcc: str | None = Field("MJPG", description="V4L2 pixel format to request (MJPG gives USB webcams 30 fps)")

    @field_validator("source", mode="before")
    @classmethod
    def _source_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @field_validator("fourcc")
    @classmethod
    def _four_characters(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 4:
            raise ValueError(f"fourcc must be 4 characters such as MJPG or YUYV, got {value!r}")
        return value


class DeviceProfile(_Section):
    """One device: how many threads to run, which runtimes to prefer, its camera and how to install edgecnn."""

    name: str
    description: str = ""
    arch: str = Field(description="CPU architecture as `uname -m` prints it (aarch64, x86_64, armv7l)")
    threads: int = Field(ge=1, le=256, description="interpreter threads for inference")
    runtime_preference: list[str] = Field(
        default_factory=lambda: ["tflite"], min_length=1,
        description="export formats in the order this device runs them best (tflite = LiteRT)",
    )
    precisions: list[str] | None = Field(
        None, min_length=1, description="precisions `edgecnn deploy` tries for each runtime, where the format "
        "supports them (null: every precision of each format)",
    )
    camera: CameraSettings = Field(default_factory=CameraSettings)
    install: str = Field(description="shell commands that install edgecnn on the device")
    notes: str = ""

    @field_validator("runtime_preference")
    @classmethod
    def _known_formats(cls, formats: list[str]) -> list[str]:
        unknown = [name for name in formats if name not in FORMATS]
        if unknown:
            raise ValueError(f"unknown format(s) {unknown}; known formats: {', '.join(FORMATS)}")
        if len(set(formats)) != len(formats):
            raise ValueError(f"formats listed twice: {formats}")
        return formats


    @field_validator("precisions")
    @classmethod
    def _known_precisions(cls, precisions: list[str] | None) -> list[str] | None:
        unknown = [name for name in precisions or [] if name not in ALL_PRECISIONS]
        if unknown:
            raise ValueError(f"unknown precision(s) {unknown}; known precisions: {', '.join(ALL_PRECISIONS)}")
        return precisions

    def deploy_targets(self) -> list[tuple[str, str]]:
        """(format, precision) pairs `edgecnn deploy` considers: runtimes × precisions each format supports."""
        return [
            (name, precision)
            for name in self.runtime_preference
            for precision in FORMATS[name].precisions
            if self.precisions is None or precision in self.precisions
        ]


def profile_paths(directory: Path = DEVICES_DIR) -> list[Path]:
    """The profile files in `directory`, sorted by name."""
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if path.suffix in SUFFIXES and path.is_file())


def profile_names(directory: Path = DEVICES_DIR) -> list[str]:
    """Names of the profiles in `directory` (their file stems)."""
    return [path.stem for path in profile_paths(directory)]


def load_profile(name_or_path: str | Path, directory: Path = DEVICES_DIR) -> DeviceProfile:
    """A profile by name (a file stem in `directory`) or by path; DeviceProfileError when missing or invalid."""
    path = _resolve(str(name_or_path), directory)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DeviceProfileError(f"{path}: not a readable YAML device profile ({exc})") from exc
    if not isinstance(raw, dict):
        raise DeviceProfileError(f"{path}: a device profile is a YAML mapping, got {type(raw).__name__}")
    try:
        return DeviceProfile.model_validate(raw)
    except ValidationError as exc:
        raise DeviceProfileError(f"{path}: invalid device profile:\n{_describe(exc)}") from None


def list_profiles(directory: Path = DEVICES_DIR) -> list[DeviceProfile]:
    """Every profile in `directory`, validated (the first invalid one raises)."""
    return [load_profile(path, directory) for path in profile_paths(directory)]


def _resolve(name_or_path: str, directory: Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in SUFFIXES or path.parent != Path("."):
        if not path.is_file():
            raise DeviceProfileError(f"{path}: no such device profile file")
        return path
    for suffix in SUFFIXES:
        if (directory / f"{name_or_path}{suffix}").is_file():
            return directory / f"{name_or_path}{suffix}"
    names = profile_names(directory)
    close = difflib.get_close_matches(name_or_path, names, n=1)
    hint = f" — did you mean {close[0]!r}?" if close else ""
    raise DeviceProfileError(
        f"unknown device {name_or_path!r}{hint} (profiles in {directory}: {', '.join(names) or 'none'})"
    )


def _describe(exc: ValidationError) -> str:
    """One line per problem: the dotted field, what was wrong, and for unknown keys the allowed ones."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            model = _model_at(error["loc"][:-1])
            allowed = list(model.model_fields)
            close = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            lines.append(f"  {location}: unknown key{hint} (allowed: {', '.join(allowed)})")
        else:
            lines.append(f"  {location}: {error['msg']} (got {error.get('input')!r})")
    return "\n".join(lines)


def _model_at(location: tuple) -> type[BaseModel]:
    model: type[BaseModel] = DeviceProfile
    for part in location:
        annotation = model.model_fields[str(part)].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return model

"""The Python half of benchmarks/pi_os_emulation.sh: test data, one side's outputs, and the x86 vs aarch64 report.

  sample BUNDLE DATA_DIR   (x86, needs the bundle's data set) the bundle's test split as DATA_DIR/images/<label>/*.png
                           and the same images as DATA_DIR/video.mp4
  side BUNDLE DATA_DIR OUT (either side; imports only numpy and edgecnn's device side) raw probabilities of every PNG,
                           `edgecnn eval` on the folder, `edgecnn live --every-frame --record` on the video
  report CACHE SUITE...    compares each CACHE/<suite>-arm64/work/out with CACHE/x86, prints the table and writes
                           the pi_os_emulation section of RESULTS.md; no latency (emulated time is no device figure)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

MB = 1e6  # decimal MB, as pip and benchmarks/footprint.py count install sizes
VERSIONS = ("edgecnn", "ai-edge-litert", "tflite-runtime", "numpy", "opencv-python-headless")
CLI = "import sys; from edgecnn.cli import main; sys.exit(main())"
TOOLING = ("pip", "setuptools", "_distutils_hack", "pkg_resources")


def sample(bundle: Path, data_dir: Path, frames: int, frame_size: int) -> None:
    """Write the bundle's recorded test split as PNGs (class folders) and as an mp4 of `frames` upscaled images."""
    import cv2

    from edgecnn.commands.eval import data_settings
    from edgecnn.data import load_splits
    from edgecnn.runtime import load

    predictor = load(bundle)
    test = load_splits(**data_settings(predictor, None, None, "test")).test
    for index, (image, label) in enumerate(zip(test.images, test.labels)):
        folder = data_dir / "images" / test.class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:05d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer = cv2.VideoWriter(str(data_dir / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10,
                             (frame_size, frame_size))
    for image in test.images[:frames]:
        frame = cv2.resize(image, (frame_size, frame_size), interpolation=cv2.INTER_NEAREST)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    print(f"wrote {len(test.images)} images and {min(frames, len(test.images))} video frames under {data_dir}")


def _versions() -> dict[str, str]:
    found = {}
    for name in VERSIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _decode(video: Path) -> np.ndarray:
    """Every frame of `video` as OpenCV decodes it here (BGR), to tell decoder from model differences apart."""
    import cv2

    capture, frames = cv2.VideoCapture(str(video)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)


def _step(out: Path, name: str, command: list[str]) -> bool:
    """Run one edgecnn command, its output kept in OUT/<name>.log; True when it exits 0."""
    with open(out / f"{name}.log", "w") as log:
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode == 0


def side(bundle: Path, data_dir: Path, out: Path) -> None:
    """This machine's raw probabilities, eval report and live records of `bundle` on the sampled data."""
    from edgecnn.runtime import fit_batch, load, read_image

    out.mkdir(parents=True, exist_ok=True)
    predictor = load(bundle)
    paths = sorted((data_dir / "images").rglob("*.png"))
    images = fit_batch(np.stack([read_image(p) for p in paths]), predictor.image_size,
                       predictor.manifest.preprocessing.resize)
    np.save(out / "probs.npy", predictor.predict(images))
    np.save(out / "frames.npy", _decode(data_dir / "video.mp4"))
    cli = [sys.executable, "-c", CLI]
    steps = {
        "eval": _step(out, "eval", [*cli, "eval", str(bundle), "--data", str(data_dir / "images"), "--source",
                                    "folder", "--split", "all", "--json", "--out", str(out / "eval")]),
        "live": _step(out, "live", [*cli, "live", str(bundle), "--source", str(data_dir / "video.mp4"), "--pace",
                                    "fast", "--every-frame", "--quiet", "--record", str(out / "live.jsonl"),
                                    "--out", str(out / "live")]),
    }
    facts = {"python": platform.python_version(), "machine": platform.machine(), "versions": _versions(),
             "runtime": predictor.info(), "images": len(paths), "steps": steps}
    (out / "side.json").write_text(json.dumps(facts, indent=2))
    print(json.dumps(facts))


def _tree_bytes(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return 0 if path.is_symlink() else path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _site_packages_mb(root: Path) -> tuple[float, float] | None:
    """(site-packages, the same without pip/setuptools) of the venv inside `root`, in MB."""
    site = next(root.glob("opt/edgecnn/lib/python3*/site-packages"), None)
    if site is None:
        return None
    entries = [(p.name, _tree_bytes(p)) for p in site.iterdir()]
    total = sum(size for _, size in entries)
    tooling = sum(size for name, size in entries if name.split("-")[0].split(".")[0] in TOOLING)
    return total / MB, (total - tooling) / MB


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _live_records(path: Path) -> dict[int, tuple[str, float]]:
    if not path.is_file():
        return {}
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {row["seq"]: (row["top"][0][0], row["top"][0][1]) for row in rows}


def compare(cache: Path, suite: str) -> dict:
    """One OS's row: what completed inside the emulated root and how its outputs compare with x86's."""
    root, x86 = cache / f"{suite}-arm64", cache / "x86"
    out = root / "work" / "out"
    row: dict = {"os": f"Debian {suite} arm64", "debootstrap": (cache / f"{suite}.debootstrap.ok").is_file(),
                 "install": (out / "install.ok").is_file()}
    sizes = _site_packages_mb(root) if row["install"] else None
    row["site_packages_mb"], row["site_packages_without_pip_mb"] = sizes or (None, None)
    facts = _read_json(out / "side.json") or {}
    row["python"], row["machine"] = facts.get("python"), facts.get("machine")
    row["versions"] = facts.get("versions", {})
    if (out / "probs.npy").is_file():
        mine, theirs = np.load(x86 / "probs.npy"), np.load(out / "probs.npy")
        same_shape = mine.shape == theirs.shape
        row["images"] = int(len(theirs))
        row["probabilities_identical"] = bool(same_shape and np.array_equal(mine, theirs))
        row["max_abs_diff"] = float(np.max(np.abs(mine - theirs))) if same_shape else None
        row["top1_agreement"] = float(np.mean(mine.argmax(1) == theirs.argmax(1))) if same_shape else None
    for name, path in (("eval_top1", "eval/eval.json"),):
        row[name] = (_read_json(out / path) or {}).get("top1")
        row[f"x86_{name}"] = (_read_json(x86 / path) or {}).get("top1")
    live = _read_json(out / "live" / "live.json")
    row["live_inferred"] = live["frames"]["inferred"] if live else None
    row["x86_live_inferred"] = ((_read_json(x86 / "live" / "live.json") or {}).get("frames") or {}).get("inferred")
    if (out / "frames.npy").is_file():
        mine, theirs = np.load(x86 / "frames.npy").astype(np.int16), np.load(out / "frames.npy").astype(np.int16)
        same_shape = mine.shape == theirs.shape
        row["video_frames_identical"] = bool(same_shape and np.array_equal(mine, theirs))
        row["video_max_abs_diff"] = int(np.max(np.abs(mine - theirs))) if same_shape and mine.size else None
    mine, theirs = _live_records(x86 / "live.jsonl"), _live_records(out / "live.jsonl")
    common = sorted(set(mine) & set(theirs))
    if common:
        row["live_top1_agreement"] = sum(mine[s][0] == theirs[s][0] for s in common) / len(common)
        row["live_max_abs_diff"] = max(abs(mine[s][1] - theirs[s][1]) for s in common)
    return row


def _fmt(value, pattern: str = "{}") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return pattern.format(value)


def report(cache: Path, suites: list[str], bundle_name: str, cpu: str) -> None:
    """Print the per-OS table and write it, with the x86 reference, as the pi_os_emulation section."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from results import write_section

    rows = [compare(cache, suite) for suite in suites]
    (cache / "report.json").write_text(json.dumps(rows, indent=2))
    x86 = _read_json(cache / "x86" / "side.json") or {}
    header = ("| OS | debootstrap | Python | install | site-packages MB (without pip) | eval top-1 emulated / x86 | "
              "probabilities bit-identical (max \\|Δp\\|) | top-1 agreement | live frames inferred emulated / x86 "
              "(top-1 agreement, max \\|Δp\\|) | video decoded identically (max \\|Δ\\| levels) |")
    lines = [header, "|" + " --- |" * 10]
    for row in rows:
        size = (f"{row['site_packages_mb']:.1f} ({row['site_packages_without_pip_mb']:.1f})"
                if row["site_packages_mb"] is not None else "—")
        identical = (f"{_fmt(row.get('probabilities_identical'))} ({row['max_abs_diff']:.2g})"
                     if row.get("max_abs_diff") is not None else "—")
        live = f"{_fmt(row['live_inferred'])} / {_fmt(row['x86_live_inferred'])}"
        if "live_top1_agreement" in row:
            live += f" ({row['live_top1_agreement']:.1%}, {row['live_max_abs_diff']:.2g})"
        lines.append(
            f"| {row['os']} | {_fmt(row['debootstrap'], '{}')} | {_fmt(row['python'])} | {_fmt(row['install'])} | "
            f"{size} | {_fmt(row['eval_top1'], '{:.2%}')} / {_fmt(row['x86_eval_top1'], '{:.2%}')} | {identical} | "
            f"{_fmt(row.get('top1_agreement'), '{:.1%}')} | {live} | {_fmt(row.get('video_frames_identical'))} "
            f"({_fmt(row.get('video_max_abs_diff'))}) |"
        )
    table = "\n".join(lines)
    print(table)
    versions = "; ".join(
        f"{row['os']}: " + ", ".join(f"{k} {v}" for k, v in row["versions"].items()) for row in rows if row["versions"]
    )
    x86_versions = ", ".join(f"{k} {v}" for k, v in x86.get("versions", {}).items())
    body = (
        f"## Raspberry Pi OS by emulation: Debian arm64 under qemu-user-static ({cpu}), `{bundle_name}`\n\n"
        "`benchmarks/pi_os_emulation.sh`: debootstrap arm64 roots, the base wheel installed in a venv inside from "
        f"PyPI (aarch64 wheels), run on qemu's {cpu} model with a matching `/proc/cpuinfo`; then the same "
        "raw-probability probe, `edgecnn eval` (every image of the bundle's test split, as PNGs) and "
        "`edgecnn live --every-frame` (the same images as an mp4) inside and on this x86 machine. Probabilities "
        "are compared bit for bit (float32 `array_equal`); live compares each frame's recorded top-1 (rounded "
        "to 6 decimals), and the video's frames as each side's OpenCV decodes them are compared too, to tell "
        "decoder from model differences apart. No latency is reported: emulated time is not a device figure.\n\n"
        f"{table}\n\n"
        f"Packages: x86 {x86_versions}; {versions}."
    )
    print(f"wrote {write_section('pi_os_emulation', body)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("sample")
    p.add_argument("bundle", type=Path)
    p.add_argument("data_dir", type=Path)
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--frame-size", type=int, default=128)
    p.set_defaults(run=lambda a: sample(a.bundle, a.data_dir, a.frames, a.frame_size))
    p = commands.add_parser("side")
    p.add_argument("bundle", type=Path)
    p.add_argument("data_dir", type=Path)
    p.add_argument("out", type=Path)
    p.set_defaults(run=lambda a: side(a.bundle, a.data_dir, a.out))
    p = commands.add_parser("report")
    p.add_argument("cache", type=Path)
    p.add_argument("suites", nargs="+")
    p.add_argument("--bundle-name", default="bundle")
    p.add_argument("--cpu", default="cortex-a76", help="the emulated core (PI_CPU)")
    p.set_defaults(run=lambda a: report(a.cache, a.suites, a.bundle_name, a.cpu))
    args = parser.parse_args()
    args.run(args)

if __name__ == "__main__":
    main()

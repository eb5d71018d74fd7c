"""The deploy directory: the chosen bundle, deploy.json, a latency-vs-accuracy plot and run.sh, written atomically."""

from __future__ import annotations

import shlex
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgecnn import __version__
from edgecnn.atomic import temporary_sibling, write_json, write_text
from edgecnn.deploy.candidates import Candidate
from edgecnn.devices import DeviceProfile
from edgecnn.report import format_table
from edgecnn.runtime.measurements import machine_info

DEPLOY_NAME = "deploy.json"
DEVICE_PREFIX = "device:"  # how Candidate.measured starts for latency from a device's bench.json
PLOT_NAME = "latency_vs_accuracy.png"
SCRIPT_NAME = "run.sh"
PROFILE_NAME = "device.yaml"

COLUMNS = [
    ("label", "candidate", "{}"),
    ("size_kb", "size KB", "{:.1f}"),
    ("top1_pct", "top-1 %", "{:.2f}"),
    ("drop_points", "drop pt", "{:+.2f}"),
    ("p50_ms", "p50 ms", "{:.3f}"),
    ("p90_ms", "p90 ms", "{:.3f}"),
    ("where", "latency", "{}"),
    ("verdict", "verdict", "{}"),
    ("reason", "reason", "{}"),
]


def table(candidates: list[Candidate]) -> str:
    """Every candidate as an aligned text table, proxy latency marked."""
    rows = [
        {
            "label": candidate.label,
            "size_kb": candidate.size_bytes / 1e3 if candidate.bundle else None,
            "top1_pct": None if candidate.top1 is None else 100 * candidate.top1,
            "drop_points": candidate.drop_points,
            "p50_ms": candidate.p50_ms,
            "p90_ms": candidate.p90_ms,
            "where": latency_source(candidate) if candidate.p50_ms is not None else None,
            "verdict": candidate.verdict,
            "reason": candidate.reason,
        }
        for candidate in candidates
    ]
    return format_table(rows, COLUMNS)


def latency_source(candidate: Candidate) -> str:
    """device (a bench.json from it), here (this machine, the device's architecture) or proxy (another one)."""
    if candidate.measured.startswith(DEVICE_PREFIX):
        return "device"
    return "proxy" if candidate.proxy else "here"


def latency_note(candidates: list[Candidate], profile: DeviceProfile) -> str:
    """One line saying where the latency figures come from (and that proxy ones are not the device's)."""
    sources = {latency_source(c) for c in candidates if c.p50_ms is not None}
    if sources == {"device"}:
        return f"latency: measured on the device ({profile.name}, bench.json files)"
    if "proxy" not in sources:
        return (f"latency: measured on this machine ({machine_info()['arch']}, {machine_info()['cpu']}) at "
                f"{profile.threads} threads: the {profile.name}'s architecture, not the device itself; "
                "--measurements DIR for device figures")
    return (f"latency: PROXY, measured on this machine ({machine_info()['arch']}, {machine_info()['cpu']}) at "
            f"{profile.threads} threads, not on a {profile.name} ({profile.arch}); rerun with --measurements DIR "
            "(bench.json files from `edgecnn bench --save` on the device) for device figures")


def run_script(profile: DeviceProfile, bundle_name: str) -> str:
    """run.sh: `./run.sh install` runs the profile's install lines; `./run.sh` starts edgecnn live on its camera."""
    install = "\n".join(f"  {line}" if line.strip() else "" for line in profile.install.strip().splitlines())
    return f"""#!/usr/bin/env bash
# {bundle_name} on a {profile.name} ({profile.description or profile.arch}), chosen by `edgecnn deploy`
# (see deploy.json). Once on the device:  ./run.sh install
# Then, with edgecnn on PATH (activate the venv the install made):  ./run.sh [more edgecnn live flags]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ "${{1:-}}" = install ]; then
{install}
  exit 0
fi
# The profile's threads and camera ({shlex.quote(profile.camera.source)}); flags given here override them.
exec edgecnn live "$HERE/{bundle_name}" --device "$HERE/{PROFILE_NAME}" "$@"
"""


# Where the latency axis's figures come from (latency_source of the chosen candidate).
AXIS_NOTES = {
    "proxy": " (PROXY: this machine, not the device)", "here": " (this machine)", "device": " (on the device)",
}


def plot(candidates: list[Candidate], path: Path, title: str, source: str) -> Path | None:
    """Latency (x) against validation top-1 (y) for every measured candidate, the chosen one ringed."""
    try:
        import matplotlib
    except ImportError:
        print(f"note: matplotlib is not installed, so {path.name} was not drawn", file=sys.stderr)
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for candidate in candidates:
        if candidate.p50_ms is None or candidate.top1 is None:
            continue
        chosen = candidate.verdict == "chosen"
        colour = {"chosen": "tab:green", "eligible": "tab:blue"}.get(candidate.verdict, "tab:red")
        ax.scatter(candidate.p50_ms, 100 * candidate.top1, s=120 if chosen else 40, color=colour,
                   edgecolors="black" if chosen else "none", zorder=3)
        ax.annotate(candidate.label, (candidate.p50_ms, 100 * candidate.top1), textcoords="offset points",
                    xytext=(5, 4), fontsize=8)
    ax.set_xlabel("p50 latency, ms" + AXIS_NOTES[source])
    ax.set_ylabel("validation top-1, %")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path


def write_deploy(
    out_dir: Path, chosen: Candidate, candidates: list[Candidate], profile: DeviceProfile, facts: dict[str, Any]
) -> Path:
    """Write out_dir atomically: the chosen bundle (copied), deploy.json, the plot, run.sh and the profile."""
    proxy = chosen.proxy
    bundle_name = Path(chosen.bundle).name
    note = latency_note(candidates, profile)
    record = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "edgecnn_version": __version__,
        **facts,
        "device": profile.model_dump(mode="json"),
        "chosen": {"bundle": bundle_name, "format": chosen.format, "precision": chosen.precision},
        "latency_source": latency_source(chosen),
        "latency_note": note,
        "measured_on": machine_info(),
        "candidates": [candidate.to_dict() for candidate in candidates],
    }
    with temporary_sibling(out_dir) as tmp:
        tmp.mkdir()
        shutil.copytree(chosen.bundle, tmp / bundle_name)
        write_json(tmp / DEPLOY_NAME, record)
        title = f"{facts['run_name']} on {profile.name}: chosen {chosen.label}" + (" — latency is a proxy" if proxy
                                                                                  else "")
        plot(candidates, tmp / PLOT_NAME, title, latency_source(chosen))
        script = write_text(tmp / SCRIPT_NAME, run_script(profile, bundle_name))
        script.chmod(0o755)
        write_text(tmp / PROFILE_NAME, _profile_yaml(profile))
    return out_dir


def _profile_yaml(profile: DeviceProfile) -> str:
    import yaml

    return yaml.safe_dump(profile.model_dump(mode="json", exclude_none=True), sort_keys=False)

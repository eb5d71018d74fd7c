"""benchmarks/pi_os_emulation.sh refuses bad arguments before touching anything; its report compares bit for bit."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "pi_os_emulation.sh"


def _companion():
    spec = importlib.util.spec_from_file_location("pi_os_emulation", BENCHMARKS / "pi_os_emulation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_script_refuses_missing_arguments_and_non_bundles(tmp_path):
    missing = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "cache")], capture_output=True, text=True)
    assert missing.returncode == 2 and "usage:" in missing.stderr
    not_bundle = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "cache"), str(tmp_path)], capture_output=True,
                                text=True)
    assert not_bundle.returncode == 2 and "no bundle.json" in not_bundle.stderr
    assert not (tmp_path / "cache").exists()  # nothing created before the arguments are known good


def _side(out: Path, probs: np.ndarray, top1: float, live: list[tuple[str, float]]) -> None:
    (out / "eval").mkdir(parents=True)
    (out / "live").mkdir()
    np.save(out / "probs.npy", probs)
    (out / "eval" / "eval.json").write_text(json.dumps({"top1": top1}))
    (out / "live" / "live.json").write_text(json.dumps({"frames": {"inferred": len(live)}}))
    (out / "live.jsonl").write_text("".join(json.dumps({"seq": i, "top": [list(t)]}) + "\n" for i, t in
                                            enumerate(live)))
    (out / "side.json").write_text(json.dumps({"python": "3.11.2", "machine": "aarch64", "versions": {}}))


def test_compare_reports_identical_and_differing_outputs(tmp_path):
    probs = np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)
    _side(tmp_path / "x86", probs, 0.5, [("a", 0.75), ("b", 0.5)])
    same = tmp_path / "bookworm-arm64" / "work" / "out"
    _side(same, probs.copy(), 0.5, [("a", 0.75), ("b", 0.5)])
    (same / "install.ok").touch()
    (tmp_path / "bookworm.debootstrap.ok").touch()
    nudged = probs.copy()
    nudged[1] = [0.5 - 2**-20, 0.5 + 2**-20]
    _side(tmp_path / "trixie-arm64" / "work" / "out", nudged, 0.5, [("a", 0.75), ("a", 0.5)])

    companion = _companion()
    identical, differing = companion.compare(tmp_path, "bookworm"), companion.compare(tmp_path, "trixie")
    assert identical["probabilities_identical"] and identical["max_abs_diff"] == 0.0
    assert identical["debootstrap"] and identical["install"] and identical["live_top1_agreement"] == 1.0
    assert not differing["probabilities_identical"] and differing["max_abs_diff"] > 0
    assert differing["top1_agreement"] == 0.5 and differing["live_top1_agreement"] == 0.5
    assert not differing["debootstrap"] and not differing["install"]

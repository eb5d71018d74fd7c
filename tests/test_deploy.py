"""edgecnn deploy: candidates from a device profile, reuse and export, budget, ranking, proxy labels, output dir."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import train_tiny_run

from edgecnn.cli import main
from edgecnn.deploy import Candidate, choose
from edgecnn.devices import load_profile
from edgecnn.runtime.bundle import read_manifest
from edgecnn.runtime.measurements import bench_record, write_bench

RECIPE = {
    "name": "digits-deploy",
    "data": {"source": "builtin", "path": "digits", "image_size": 16, "max_per_class": 30, "val_fraction": 0.25,
             "test_fraction": 0.25},
    "model": {"name": "tiny_cnn", "dropout": 0.0},
    "train": {"epochs": 6, "batch_size": 16, "learning_rate": 0.01},
    "export": {"calibration_images": 60},
}
# An ARM device whose only runtime is LiteRT, float32 and int8: two candidates, measured here as a proxy.
PROFILE = """name: tiny-arm
description: test profile
arch: aarch64
threads: 1
runtime_preference: [tflite]
precisions: [float32, int8]
install: |
  pip install edgecnn   # the device's install line
camera: {source: picamera2}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("deploy")
    run = train_tiny_run(RECIPE, root / "runs")
    profile = root / "tiny-arm.yaml"
    profile.write_text(PROFILE)
    return {"root": root, "run": run, "profile": profile, "bundles": root / "bundles", "out": root / "deploy"}


def _deploy(setup, *extra: str) -> int:
    return main(["deploy", str(setup["run"]), "--device", str(setup["profile"]), "--bundles", str(setup["bundles"]),
                 "--out", str(setup["out"]), "--runs", "20", "--warmup", "2", *extra])


def test_deploy_exports_measures_chooses_and_writes_the_directory(setup, capsys):
    assert _deploy(setup, "--max-drop", "5") == 0
    out = capsys.readouterr().out
    target = setup["out"] / "digits-deploy-tiny-arm"
    record = json.loads((target / "deploy.json").read_text())
    assert [(c["format"], c["precision"]) for c in record["candidates"]] == [("tflite", "float32"), ("tflite", "int8")]
    chosen = next(c for c in record["candidates"] if c["verdict"] == "chosen")
    assert record["chosen"]["bundle"] == Path(chosen["bundle"]).name == f"digits-deploy-tflite-{chosen['precision']}"
    others = [c for c in record["candidates"] if c is not chosen]
    assert all((c["p50_ms"], c["size_bytes"]) >= (chosen["p50_ms"], chosen["size_bytes"]) for c in others)
    for candidate in record["candidates"]:
        assert candidate["drop_points"] <= 5 and candidate["top1"] is not None and candidate["p90_ms"] > 0
        assert candidate["proxy"] is True and candidate["measured"].startswith("PROXY: this machine")
    # An x86 measurement for an ARM profile is a proxy in every output: deploy.json, the table, the plot's axis.
    assert record["latency_source"] == "proxy" and "PROXY" in record["latency_note"]
    assert "latency: PROXY" in out and " proxy " in out
    bundle = target / record["chosen"]["bundle"]
    assert read_manifest(bundle).sha256 and (bundle / "model.tflite").is_file()
    assert (target / "latency_vs_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    script = (target / "run.sh").read_text()
    assert os.access(target / "run.sh", os.X_OK)
    assert "pip install edgecnn   # the device's install line" in script and 'exec edgecnn live "$HERE/' in script
    assert load_profile(target / "device.yaml").camera.source == "picamera2"

    # Run again: the bundles exported the first time are reused, not exported again.
    assert _deploy(setup, "--max-drop", "5") == 0
    assert capsys.readouterr().out.count("reusing ") == 2


def test_deploy_without_a_candidate_in_budget_fails_and_writes_nothing(setup, capsys):
    if not (setup["bundles"] / "digits-deploy-tflite-int8").is_dir():
        pytest.skip("needs the bundles of the test above")
    out = setup["root"] / "nothing"
    code = main(["deploy", str(setup["run"]), "--device", str(setup["profile"]), "--bundles", str(setup["bundles"]),
                 "--out", str(out), "--runs", "5", "--warmup", "0", "--max-drop", "-200"])
    captured = capsys.readouterr()
    assert code == 2 and "no candidate for tiny-arm is within -200.0 points" in captured.err
    assert captured.out.count("over the -200.0 pt budget") == 2  # the table, every candidate with its reason
    assert not out.exists()


def test_device_measurements_replace_the_proxy(setup, capsys):
    bundles = {p: setup["bundles"] / f"digits-deploy-tflite-{p}" for p in ("float32", "int8")}
    if not all(b.is_dir() for b in bundles.values()):
        pytest.skip("needs the bundles of the first test")
    device = setup["root"] / "pi-bench"
    # As if `edgecnn bench --save` ran on the Pi: there float32 is made the faster one, so it must be chosen.
    for precision, p50 in (("float32", 1.0), ("int8", 3.0)):
        copy = device / bundles[precision].name
        copy.mkdir(parents=True)
        row = {"threads": 1, "runs": 50, "warmup": 5, "p50_ms": p50, "p90_ms": p50 * 1.2, "min_ms": p50}
        record = bench_record(read_manifest(bundles[precision]), row, {"backend": "litert"}, {})
        record["machine"].update(hostname="pi", arch="aarch64")
        write_bench(copy, record)
    assert _deploy(setup, "--max-drop", "5", "--measurements", str(device)) == 0
    assert "2 bench.json file(s) matched" in capsys.readouterr().out
    record = json.loads((setup["out"] / "digits-deploy-tiny-arm" / "deploy.json").read_text())
    assert record["chosen"]["precision"] == "float32" and record["latency_source"] == "device"
    assert all(not c["proxy"] and c["measured"].startswith("device: pi (aarch64") for c in record["candidates"])


def _candidate(precision: str, p50: float | None, size: int, drop: float, passed: bool = True) -> Candidate:
    rule = "probability parity" if precision.startswith("float") else "accuracy budget"
    return Candidate(format="tflite", precision=precision, bundle=f"b/{precision}", size_bytes=size, top1=0.9,
                     drop_points=drop, parity_rule=rule, parity_passed=passed, p50_ms=p50)


def test_ranking_by_p50_then_size_within_budget():
    candidates = [
        _candidate("float32", 2.0, 4000, 0.0),
        _candidate("float16", 1.0, 2000, 0.0, passed=False),  # fastest, but failed parity
        _candidate("dynamic", 1.0, 1500, 0.8),
        _candidate("int8", 1.0, 1000, 0.9),  # same p50 as dynamic, smaller: chosen
        _candidate("int16x8", 0.5, 1200, 1.5),  # fastest of all, over the budget
    ]
    chosen = choose(candidates, max_drop=1.0)
    assert chosen is candidates[3] and chosen.verdict == "chosen" and "smaller" in chosen.reason
    assert [c.verdict for c in candidates] == ["eligible", "rejected", "eligible", "chosen", "rejected"]
    assert "parity" in candidates[1].reason and "over the 1.0 pt budget" in candidates[4].reason
    assert choose(candidates, max_drop=0.5).precision == "float32"  # only float32 keeps a 0.5 pt budget
    assert choose([_candidate("int8", None, 1, 0.0)], max_drop=1.0) is None  # never measured: not chosen


def test_latency_source_labels():
    from edgecnn.deploy.output import latency_source

    here = _candidate("int8", 1.0, 1, 0.0)
    here.measured = "this machine (x86_64, 4 threads)"
    proxy = _candidate("int8", 1.0, 1, 0.0)
    proxy.measured, proxy.proxy = "PROXY: this machine (x86_64, 4 threads)", True
    device = _candidate("int8", 1.0, 1, 0.0)
    device.measured = "device: pi (aarch64, 4 threads, 2026-01-01)"
    assert [latency_source(c) for c in (here, proxy, device)] == ["here", "proxy", "device"]

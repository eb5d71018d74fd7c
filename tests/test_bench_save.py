"""edgecnn bench --save (bench.json in the bundle), --per-op, and cold start (process start → first result)."""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import pytest

from edgecnn.cli import main
from edgecnn.errors import BundleError
from edgecnn.runtime.bundle import read_manifest
from edgecnn.runtime.measurements import BENCH_NAME, find_bench_files, read_bench


def test_bench_save_writes_bench_json_into_the_bundle(bundles, tmp_path, capsys):
    bundle = Path(shutil.copytree(bundles["int8"], tmp_path / bundles["int8"].name))
    assert main(["bench", str(bundle), "--runs", "4", "--warmup", "1", "--threads", "1", "--save", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    record = read_bench(bundle / BENCH_NAME)
    assert row["saved"] == str(bundle / BENCH_NAME) and find_bench_files(tmp_path) == [bundle / BENCH_NAME]
    assert record["machine"]["arch"] == platform.machine() and record["machine"]["cpu_count"] >= 1
    assert record["bundle"]["sha256"] == read_manifest(bundle).sha256 and record["bundle"]["precision"] == "int8"
    assert record["runtime"]["backend"] == "litert"
    assert record["runtime"]["package"].startswith(("ai_edge_litert", "tflite"))
    assert record["threads"] == 1 and record["stats"]["runs"] == 4
    assert record["stats"]["p50_ms"] == row["p50_ms"] > 0
    cold = record["cold_start"]
    # Process start → first result holds the import, the verified load and the first inference.
    assert cold["cold_start_ms"] > cold["import_ms"] + cold["load_verify_ms"] + cold["first_inference_ms"] > 0


def test_bench_table_shows_cold_start_and_per_op_plan(bundles, capsys):
    assert main(["bench", str(bundles["int8"]), "--runs", "3", "--warmup", "0", "--per-op"]) == 0
    out = capsys.readouterr().out
    assert "cold ms" in out.splitlines()[0]
    # LiteRT's Python wheel has no op profiler: the execution plan is printed instead, saying so.
    assert "slowest ops over" in out and "exposes no op profiler" in out and "XNNPACK partition" in out


def test_bench_save_refuses_a_bare_model_file(bundles, tmp_path):
    bare = tmp_path / "model.tflite"
    shutil.copy(bundles["int8"] / "model.tflite", bare)
    assert main(["bench", str(bare), "--runs", "2", "--warmup", "0", "--save"]) == 2
    assert not (tmp_path / BENCH_NAME).exists()


def test_read_bench_rejects_other_json(tmp_path):
    (tmp_path / BENCH_NAME).write_text('{"p50": 1}')
    with pytest.raises(BundleError, match="not a bench.json written by `edgecnn bench --save`"):
        read_bench(tmp_path / BENCH_NAME)

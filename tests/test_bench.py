"""Latency statistics, accuracy evaluation, report tables and the `eval` / `bench` commands."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CLASSES, IMAGE_SIZE, IMAGES_PER_CLASS

from edgecnn.bench.evaluate import LabelMismatchError, check_class_names, classification_report, evaluate
from edgecnn.bench.latency import measure_latency, peak_rss_mb
from edgecnn.cli import COMMANDS
from edgecnn.data import ImageSet, load_splits
from edgecnn.report import format_table, plot_confusion_matrix
from edgecnn.runtime import BundleError, load


def run_command(name: str, *argv: str) -> int:
    """Parse and run one `edgecnn NAME ...` command through the module the CLI table registers for it."""
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"edgecnn {name}")
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def held_out_test_split(bundle: Path) -> ImageSet:
    """The held-out test split recorded in the bundle, loaded exactly as `edgecnn eval` loads it."""
    return load_splits(**load(bundle).manifest.source["data"]).test


class CountingPredictor:
    """Stands in for a Predictor: counts predict() calls and answers class = first pixel's red value % 3."""

    labels = CLASSES
    image_size = (IMAGE_SIZE, IMAGE_SIZE)
    load_ms = 12.5

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.eye(len(CLASSES), dtype=np.float32)[images[:, 0, 0, 0] % len(CLASSES)]

    def info(self) -> dict:
        return {"backend": "fake", "threads": 3}


# --- latency -----------------------------------------------------------------------------------------------------


def test_measure_latency_times_exactly_the_runs_after_warmup() -> None:
    predictor = CountingPredictor()
    stats = measure_latency(predictor, runs=17, warmup=4)  # type: ignore[arg-type]
    assert predictor.calls == 17 + 4
    assert stats.runs == 17 and len(stats.samples_ms) == 17 and stats.warmup == 4
    assert stats.load_ms == 12.5 and stats.threads == 3 and stats.info == {"backend": "fake", "threads": 3}
    assert "samples_ms" not in stats.to_dict() and len(stats.to_dict(samples=True)["samples_ms"]) == 17


def test_measure_latency_statistics_are_ordered_and_match_the_samples(bundles: dict[str, Path]) -> None:
    predictor = load(bundles["int8"], threads=1)
    stats = measure_latency(predictor, runs=40, warmup=5)
    samples = np.asarray(stats.samples_ms)
    assert stats.min_ms == samples.min() > 0
    assert stats.min_ms <= stats.p50_ms <= stats.p90_ms <= stats.p99_ms <= samples.max()
    assert stats.p50_ms == pytest.approx(np.median(samples))
    assert stats.mean_ms == pytest.approx(samples.mean()) and stats.std_ms == pytest.approx(samples.std())
    assert stats.load_ms == predictor.load_ms and stats.threads == 1 and stats.info["precision"] == "int8"
    assert 0 < stats.peak_rss_mb == pytest.approx(peak_rss_mb(), abs=50)


def test_measure_latency_rejects_bad_arguments(bundles: dict[str, Path]) -> None:
    predictor = load(bundles["float32"])
    with pytest.raises(ValueError, match="runs >= 1"):
        measure_latency(predictor, runs=0)
    with pytest.raises(ValueError, match=r"shape \(N, 16, 16, 3\), got \(1, 8, 8, 3\)"):
        measure_latency(predictor, runs=1, image=np.zeros((8, 8, 3), np.uint8))


# --- evaluation --------------------------------------------------------------------------------------------------


def test_classification_report_exact_numbers() -> None:
    names = ["a", "b", "c", "d", "e", "f"]
    labels = np.array([0, 0, 1, 1, 2, 5])
    probabilities = np.array([
        [0.9, 0.1, 0, 0, 0, 0],  # a → a
        [0.1, 0.6, 0.3, 0, 0, 0],  # a → b (a ranked 3rd: in the top 5)
        [0.0, 0.5, 0.5, 0, 0, 0],  # b → b (tie with c: the lower index wins)
        [0.3, 0.2, 0.1, 0.1, 0.1, 0.2],  # b → a
        [0.0, 0.0, 0.9, 0.1, 0, 0],  # c → c
        [0.5, 0.2, 0.1, 0.1, 0.1, 0.0],  # f → a (f ranked last: not in the top 5)
    ])
    report = classification_report(labels, probabilities, names)
    assert report.n == 6
    assert report.top1 == pytest.approx(3 / 6)
    assert report.top5 == pytest.approx(5 / 6)
    assert report.per_class == {"a": 0.5, "b": 0.5, "c": 1.0, "d": None, "e": None, "f": 0.0}
    assert report.per_class_n == {"a": 2, "b": 2, "c": 1, "d": 0, "e": 0, "f": 1}
    expected = np.zeros((6, 6), np.int64)
    for true, predicted in [(0, 0), (0, 1), (1, 1), (1, 0), (2, 2), (5, 0)]:
        expected[true, predicted] += 1
    np.testing.assert_array_equal(report.confusion_matrix, expected)
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["confusion_matrix"][0] == [1, 1, 0, 0, 0, 0] and as_json["top5"] == pytest.approx(5 / 6)


def test_classification_report_has_no_top5_below_five_classes_and_checks_shapes() -> None:
    report = classification_report(np.array([0, 1]), np.array([[0.2, 0.8], [0.1, 0.9]]), ["x", "y"])
    assert report.top5 is None and report.top1 == 0.5
    with pytest.raises(ValueError, match=r"shape \(2, 3\) for 3 classes, got \(2, 2\)"):
        classification_report(np.array([0, 1]), np.array([[0.2, 0.8], [0.1, 0.9]]), ["x", "y", "z"])


def test_evaluate_with_known_predictions_batches_over_every_image() -> None:
    # The fake predicts red-value % 3: the pixel values below give predictions [0, 1, 2, 0, 1, 2, 0].
    images = np.zeros((7, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    images[:, 0, 0, 0] = [0, 1, 2, 3, 4, 5, 6]
    labels = np.array([0, 1, 1, 0, 2, 2, 0])
    predictor = CountingPredictor()
    report = evaluate(predictor, ImageSet(images, labels, list(CLASSES)), batch=3, progress=False)  # type: ignore[arg-type]
    assert predictor.calls == 3  # 3 + 3 + 1 images
    assert report.n == 7 and report.top1 == pytest.approx(5 / 7)
    np.testing.assert_array_equal(report.confusion_matrix, [[3, 0, 0], [0, 1, 1], [0, 1, 1]])


def test_evaluate_matches_the_predictors_own_argmax(bundles: dict[str, Path]) -> None:
    for precision, bundle in bundles.items():
        predictor = load(bundle)
        test = held_out_test_split(bundle)
        report = evaluate(predictor, test, batch=4, progress=False)
        predicted = predictor.predict(test.images).argmax(axis=1)
        assert report.n == len(test) == 3 * len(CLASSES), precision
        assert report.top1 == pytest.approx(np.mean(predicted == test.labels)), precision
        expected = np.zeros((3, 3), np.int64)
        np.add.at(expected, (test.labels, predicted), 1)
        np.testing.assert_array_equal(report.confusion_matrix, expected)
        # Colours are trivially separable: the trained model, float or int8, gets every test image right.
        assert report.top1 == 1.0, precision


def test_class_name_mismatch_names_the_difference(bundles: dict[str, Path]) -> None:
    predictor = load(bundles["float32"])
    images = np.zeros((2, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    reordered = ImageSet(images, np.array([0, 1]), ["red", "green", "blue"])
    with pytest.raises(LabelMismatchError, match="class 0 is 'red' in the data but 'blue' in the bundle"):
        evaluate(predictor, reordered, progress=False)
    with pytest.raises(LabelMismatchError, match=r"only in the bundle: \['green'\]; .* only in the data: \['cyan'\]"):
        check_class_names(["blue", "cyan", "red"], CLASSES)
    with pytest.raises(ValueError, match="evaluation set is empty"):
        evaluate(predictor, ImageSet(images[:0], np.zeros(0, np.int64), list(CLASSES)), progress=False)


# --- tables and plots --------------------------------------------------------------------------------------------


def test_format_table_aligns_numbers_right_and_text_left() -> None:
    rows = [{"name": "int8", "ms": 1.234, "n": 7}, {"name": "float32", "ms": 12.0, "n": None}]
    table = format_table(rows, [("name", "precision", "{}"), ("ms", "p50 ms", "{:.2f}"), ("n", "n", "{:d}")])
    assert table.splitlines() == [
        "precision  p50 ms  n",
        "---------  ------  -",
        "int8         1.23  7",
        "float32     12.00  -",
    ]


def test_plot_confusion_matrix_writes_png_or_skips_without_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "cm.png", title="t")
    assert path == tmp_path / "cm.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"]  # no temporary files left behind
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    assert plot_confusion_matrix(np.eye(2), ["a", "b"], tmp_path / "none.png", title="t") is None
    assert not (tmp_path / "none.png").exists()
    assert "matplotlib is not installed" in capsys.readouterr().err


# --- commands ----------------------------------------------------------------------------------------------------


def test_eval_command_uses_the_recorded_test_split(
    bundles: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = bundles["int8"]
    assert run_command("eval", str(bundle), "--json", "--threads", "1", "--out", str(tmp_path)) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((tmp_path / "eval.json").read_text())
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    expected = evaluate(load(bundle), held_out_test_split(bundle), progress=False)
    assert result["split"] == "test" and result["n"] == expected.n == 9
    assert result["top1"] == expected.top1 == 1.0
    assert result["confusion_matrix"] == expected.confusion_matrix.tolist() == [[3, 0, 0], [0, 3, 0], [0, 0, 3]]
    assert result["per_class"] == {"blue": 1.0, "green": 1.0, "red": 1.0} and result["top5"] is None
    assert result["skipped"] == 2  # broken.png and notes.txt
    assert sorted(Path(s["path"]).name for s in result["skipped_files"]) == ["broken.png", "notes.txt"]
    assert result["runtime"]["threads"] == 1 and result["runtime"]["precision"] == "int8"


def test_eval_command_all_split_on_given_data_prints_tables(
    bundles: dict[str, Path], image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(bundles["float32"]), "--data", str(image_folder), "--split", "all", "--out", str(tmp_path)]
    assert run_command("eval", *argv) == 0
    out = capsys.readouterr().out
    assert f"all split: {IMAGES_PER_CLASS * 3} images, 3 classes" in out
    assert "skipped 2 unreadable or non-image files" in out
    assert "top-1 100.00%" in out
    assert "class  images  accuracy" in out and f"red        {IMAGES_PER_CLASS}    100.0%" in out
    assert json.loads((tmp_path / "eval.json").read_text())["data"]["source"] == "folder"


def test_eval_command_errors_say_what_to_do(bundles: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--source describes --data PATH"):
        run_command("eval", str(bundles["float32"]), "--source", "folder")
    bare = tmp_path / "model.tflite"
    bare.write_bytes((bundles["float32"] / "model.tflite").read_bytes())
    with pytest.raises(ValueError, match="records no data set to evaluate on; pass --data PATH"):
        run_command("eval", str(bare))
    wrong = tmp_path / "wrong"
    for name in ("cyan", "green", "red"):
        (wrong / name).mkdir(parents=True)
        cv2.imwrite(str(wrong / name / "a.png"), np.full((8, 8, 3), 200, np.uint8))
    with pytest.raises(LabelMismatchError, match=r"only in the bundle: \['blue'\]"):
        run_command("eval", str(bundles["float32"]), "--data", str(wrong), "--split", "all", "--out", str(tmp_path))


def test_bench_command_measures_each_bundle_in_its_own_process(
    bundles: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(bundles["float32"]), str(bundles["int8"])]
    assert run_command("bench", *paths, "--runs", "5", "--warmup", "1", "--threads", "1", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["bundle"], r["format"], r["precision"]) for r in rows] == [
        (paths[0], "tflite", "float32"), (paths[1], "tflite", "int8"),
    ]
    for row in rows:
        assert row["runs"] == 5 and row["warmup"] == 1 and row["threads"] == 1
        assert 0 < row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["size_mb"] == pytest.approx(Path(row["path"]).stat().st_size / 2**20)
        # A fresh process holds only the runtime and one model, not this test process's TensorFlow.
        assert 0 < row["peak_rss_mb"] < peak_rss_mb()
    assert rows[1]["size_mb"] < rows[0]["size_mb"]  # int8 weights are smaller


def test_bench_command_prints_one_table_row_per_bundle(
    bundles: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command("bench", str(bundles["int8"]), "--runs", "3", "--warmup", "0") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "bundle", "format", "precision", "size", "MB", "threads", "load", "ms", "cold", "ms", "min", "ms", "p50", "ms",
        "p90", "ms", "p99", "ms", "mean", "ms", "peak", "RSS", "MB",
    ]
    assert lines[2].split()[:5] == [str(bundles["int8"]), "tflite", "int8", lines[2].split()[3], "auto"]
    assert lines[3] == "" and lines[4].startswith("3 timed single-image predict() calls after 0 warm-up calls")


def test_bench_command_reports_a_missing_bundle_from_its_worker_process(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"nothing: no such bundle or model file"):
        run_command("bench", str(tmp_path / "nothing"))


class _SleepingPredictor:
    """Stands in for a Predictor whose predict() takes a known time."""

    def __init__(self, seconds: float, image_size: tuple[int, int] = (8, 8)):
        self.seconds, self.image_size = seconds, image_size

    def predict(self, batch):
        import time

        time.sleep(self.seconds)


def test_paired_ratio_times_both_in_alternating_rounds():
    from edgecnn.bench.latency import paired_ratio

    ratio = paired_ratio(_SleepingPredictor(0.004), _SleepingPredictor(0.002), rounds=5, per_round=3, warmup=1)
    assert 1.5 < ratio < 2.5
    with pytest.raises(ValueError, match="different input sizes"):
        paired_ratio(_SleepingPredictor(0.0, (8, 8)), _SleepingPredictor(0.0, (4, 4)))

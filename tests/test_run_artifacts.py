"""Each stage reads only the previous stage's artifact: export needs the run directory, not the raw images; the CLI
reports bad input in one line and bugs with a traceback; sizes and model defaults come from one place."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import train_tiny_run

REPO = Path(__file__).resolve().parents[1]


def _recipe(data: Path) -> dict:
    return {
        "name": "moved",
        "data": {"source": "folder", "path": str(data), "image_size": 16, "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "tiny_cnn", "dropout": 0.0},
        "train": {"epochs": 2, "batch_size": 8, "learning_rate": 0.01},
        # Augmentation runs in CI: every layer of today's augment section.
        "augment": {"horizontal_flip": True, "rotation": 0.05, "zoom": 0.1, "translate": 0.1, "contrast": 0.1,
                    "brightness": 0.1},
        "export": {"calibration_images": 12},
    }


@pytest.fixture(scope="module")
def moved_run(tmp_path_factory: pytest.TempPathFactory, image_folder: Path) -> tuple[Path, Path]:
    """(run dir, bundles exported while the images were there); the images are deleted afterwards."""
    from edgecnn.export.pipeline import export_run

    data = tmp_path_factory.mktemp("data") / "colours"
    shutil.copytree(image_folder, data)
    run = train_tiny_run(_recipe(data), tmp_path_factory.mktemp("runs"))
    before = tmp_path_factory.mktemp("before")
    for precision in ("float32", "int8"):
        export_run(run, "tflite", precision, before)
    shutil.rmtree(data)
    return run, before


def _bundle_files(bundle: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(bundle.iterdir())}


def test_augmented_run_stores_what_export_needs(moved_run: tuple[Path, Path]) -> None:
    run, _ = moved_run
    split = json.loads((run / "split.json").read_text())
    assert split["class_names"] == ["blue", "green", "red"] and split["check_split"] == "val"
    assert split["sizes"] == {"train": 18, "val": 9, "test": 9}
    assert {"calibration.npz", "check_images.npz", "model.keras"} <= {p.name for p in run.iterdir()}
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 3  # header + 2 augmented epochs


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_export_without_the_raw_images_gives_the_same_bundle(
    moved_run: tuple[Path, Path], tmp_path: Path, precision: str
) -> None:
    from edgecnn.export.pipeline import export_run

    run, before = moved_run
    after = export_run(run, "tflite", precision, tmp_path).bundle_dir
    assert _bundle_files(after) == _bundle_files(before / after.name)


def test_old_runs_without_stored_inputs_fall_back_to_the_data(
    moved_run: tuple[Path, Path], tmp_path: Path, image_folder: Path
) -> None:
    from edgecnn.errors import DataError
    from edgecnn.export.pipeline import export_run

    run, before = moved_run
    old = tmp_path / "old-run"
    shutil.copytree(run, old)
    (old / "calibration.npz").unlink()
    (old / "check_images.npz").unlink()
    with pytest.raises(DataError, match="does not exist"):  # the images are gone: the fallback says so
        export_run(old, "tflite", "int8", tmp_path / "b")
    recipe = (old / "recipe.yaml").read_text()
    data = json.loads((run / "split.json").read_text())["data"]["path"]
    shutil.copytree(image_folder, data)  # the images are back where the recipe says
    try:
        (old / "recipe.yaml").write_text(recipe)
        rebuilt = export_run(old, "tflite", "int8", tmp_path / "b").bundle_dir
    finally:
        shutil.rmtree(data)
    original = _bundle_files(before / rebuilt.name)
    rebuilt_files = _bundle_files(rebuilt)
    assert rebuilt_files["model.tflite"] == original["model.tflite"]
    assert json.loads(rebuilt_files["bundle.json"])["checks"] == json.loads(original["bundle.json"])["checks"]


def test_bench_and_export_report_the_same_openvino_size(moved_run: tuple[Path, Path], tmp_path: Path) -> None:
    from edgecnn.bench.latency import MIB, measure_bundle
    from edgecnn.commands.bench import bench_row
    from edgecnn.export.pipeline import export_run

    run, _ = moved_run
    result = export_run(run, "openvino", "float32", tmp_path)
    files = sorted(p.name for p in result.bundle_dir.iterdir())
    assert {"model.xml", "model.bin"} <= set(files)
    on_disk = sum((result.bundle_dir / name).stat().st_size for name in ("model.xml", "model.bin"))
    assert result.manifest.size_bytes == on_disk
    row = bench_row(result.bundle_dir, measure_bundle(result.bundle_dir, threads=1, runs=2, warmup=1))
    assert row["size_mb"] == pytest.approx(on_disk / MIB)


def test_a_recipe_that_leaves_dropout_unset_gets_the_published_value() -> None:
    from edgecnn.config import parse_recipe

    recipe = parse_recipe(
        {"name": "x", "data": {"path": "p", "image_size": 32}, "model": {"name": "efficientnet_lite2"}}
    )
    assert recipe.model.arguments() == {"width": None, "weights": None, "dropout": None}
    from edgecnn.export.backend import require_tensorflow_backend

    require_tensorflow_backend()
    from edgecnn.train.runner import build_model

    model = build_model(recipe, num_classes=3)
    assert model.get_layer("head_dropout").rate == 0.3  # EfficientNet-Lite2's published head dropout


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "edgecnn.cli", *args], capture_output=True, text=True, cwd=REPO,
        env={**os.environ, **(env or {})}, timeout=300,
    )


def test_a_bug_shows_its_traceback_and_bad_input_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {path: p}\nmodel: {name: tiny_cnn}\ntrain: {optimiser: adam}\n")
    user = _cli("train", str(bad))
    assert user.returncode == 2 and "Traceback" not in user.stderr
    assert user.stderr.splitlines()[0] == f"edgecnn train: error: {bad}: invalid recipe:"

    # A ValueError from deep inside (numpy, Keras) is a bug, not bad input: it keeps its traceback.
    script = tmp_path / "bug.py"
    script.write_text(
        "import sys\nimport edgecnn.commands.models as m\n"
        "def run(args):\n    raise ValueError('operands could not be broadcast together')\n"
        "m.run = run\nfrom edgecnn.cli import main\nsys.exit(main(['models']))\n"
    )
    bug = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bug.returncode == 1 and "Traceback (most recent call last)" in bug.stderr
    assert "ValueError: operands could not be broadcast together" in bug.stderr


def test_native_logs_are_quiet_unless_verbose(moved_run: tuple[Path, Path], tmp_path: Path) -> None:
    from edgecnn.export.pipeline import export_run

    run, _ = moved_run
    bundle = export_run(run, "tflite", "int8", tmp_path).bundle_dir
    quiet = _cli("bench", str(bundle), "--runs", "2", "--warmup", "1")
    assert quiet.returncode == 0, quiet.stderr
    assert "XNNPACK" not in quiet.stderr and "cuInit" not in quiet.stderr, quiet.stderr
    loud = _cli("--verbose", "bench", str(bundle), "--runs", "2", "--warmup", "1")
    assert loud.returncode == 0 and "Created TensorFlow Lite XNNPACK delegate" in loud.stderr

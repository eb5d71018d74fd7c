"""End to end on tiny data, through the CLI a user runs: train → export → eval, resume, own image folders."""

import json

import cv2
import keras
import numpy as np
import pytest

from edgecnn.cli import main
from edgecnn.config import parse_recipe
from edgecnn.train.runner import train

pytestmark = pytest.mark.slow


def colour_folder(root, per_class=24, size=20):
    """Three visually distinct classes (red, green, blue squares on noise) as PNG files."""
    rng = np.random.default_rng(0)
    for index, name in enumerate(["blue", "green", "red"]):  # BGR order for cv2.imwrite
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            image[4:16, 4:16, index] = 230
            cv2.imwrite(str(root / name / f"{i}.png"), image)
    (root / "red" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def test_own_image_folder_train_export_eval(tmp_path, capsys):
    data = colour_folder(tmp_path / "my_data")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"name: colours\ndata: {{source: folder, path: {data}, image_size: 16, val_fraction: 0.25, "
        "test_fraction: 0.25}\nmodel: {name: tiny_cnn, dropout: 0.0}\n"
        "train: {epochs: 6, batch_size: 8, learning_rate: 0.01}\n"
    )
    runs, bundles = tmp_path / "runs", tmp_path / "bundles"
    assert main(["train", str(recipe), "--out", str(runs)]) == 0
    run = runs / "colours"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["skipped_files"] == 1 and "corrupt.png" in (run / "skipped.txt").read_text()
    assert metrics["data"] == {"train": 36, "val": 18, "test": 18}
    assert metrics["test"]["top1"] >= 0.9
    for artifact in ("model.keras", "labels.txt", "recipe.yaml", "history.csv", "plots/training_curves.png",
                     "plots/confusion_matrix.png"):
        assert (run / artifact).is_file(), artifact
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 6

    assert main(["export", str(run), "--out", str(bundles)]) == 0
    for precision in ("float32", "int8"):
        manifest = json.loads((bundles / f"colours-tflite-{precision}" / "bundle.json").read_text())
        assert manifest["labels"] == ["blue", "green", "red"]
        assert manifest["input"]["height"] == 16 and manifest["checks"]["parity"]["passed"] is True
        assert not any(op.startswith("Flex") for op in manifest["checks"]["ops"])
    float32 = json.loads((bundles / "colours-tflite-float32" / "bundle.json").read_text())["checks"]["parity"]
    assert float32["max_abs_prob_diff"] <= 1e-4 and float32["top1_agreement"] == 1.0

    capsys.readouterr()
    assert main(["eval", str(bundles / "colours-tflite-int8"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 18 and report["top1"] >= 0.9


def test_interrupted_training_resumes_from_last_epoch(tmp_path):
    recipe = parse_recipe({
        "name": "resume",
        "data": {"source": "builtin", "path": "digits", "image_size": 12, "max_per_class": 10},
        "model": {"name": "tiny_cnn"},
        "train": {"epochs": 3, "batch_size": 16},
    })

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("simulated crash after the second epoch")

    class CountEpochs(keras.callbacks.Callback):
        epochs: list[int] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(epoch)

    with pytest.raises(KeyboardInterrupt):
        train(recipe, tmp_path, extra_callbacks=[Crash()])
    run = tmp_path / "resume"
    assert (run / "checkpoints").is_dir() and not (run / "model.keras").exists()

    counter = CountEpochs()
    train(recipe, tmp_path, extra_callbacks=[counter])
    assert counter.epochs == [2]  # only the epoch that had not finished
    epochs = [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2"]
    assert (run / "model.keras").is_file() and not (run / "checkpoints").exists()
    with pytest.raises(FileExistsError, match="already holds a finished run"):
        train(recipe, tmp_path)


def test_export_of_unfinished_run_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    assert main(["export", str(tmp_path / "half")]) == 2
    assert "is not a finished run (missing model.keras, labels.txt, recipe.yaml)" in capsys.readouterr().err

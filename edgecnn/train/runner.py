"""Train a recipe into a run directory: data → model → fit (resumable) → model, labels, history, metrics, plots.

The run directory also receives what export needs (split record, calibration sample, check images), so export never
re-reads the raw data.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from edgecnn import atomic
from edgecnn.config import Recipe
from edgecnn.data import DataSplits, load_splits
from edgecnn.data.calibration import LARGER_CALIBRATION_FACTOR, calibration_sample
from edgecnn.errors import RunExistsError
from edgecnn.metrics import classification_report
from edgecnn.models import create
from edgecnn.quant.graph import leaf_layers
from edgecnn.run_dir import RunDir
from edgecnn.train.batches import ImageBatches, training_batches
from edgecnn.train.history import dedupe_history
from edgecnn.train.mixing import TrackEpoch
from edgecnn.train.optim import loss, optimizer
from edgecnn.train.reports import plot_confusion, plot_history
from edgecnn.train.saving import save_model


def load_data(recipe: Recipe) -> DataSplits:
    """The recipe's data splits (seeded with the training seed, so every stage sees the same split)."""
    return load_splits(**recipe.data_settings())


def train(
    recipe: Recipe,
    out_root: str | Path = "runs",
    overwrite: bool = False,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
) -> RunDir:
    """Train `recipe` into out_root/<name>; an interrupted run resumes from its last epoch checkpoint."""
    run = RunDir(Path(out_root) / recipe.name)
    if run.is_complete() and not overwrite:
        raise RunExistsError(
            f"{run.root} already holds a finished run; pass --overwrite or give the recipe another name"
        )
    _seed_everything(recipe.train.seed)
    data = load_data(recipe)  # before the run directory is touched: bad data leaves nothing behind
    run = _open_for_training(run, overwrite)
    resuming = run.checkpoints.is_dir()
    _record_run(recipe, run, data)
    calibration = calibration_sample(
        data.train, LARGER_CALIBRATION_FACTOR * recipe.export.calibration_images, seed=recipe.train.seed
    )
    run.write_export_inputs(recipe, data, calibration)

    model = build_model(recipe, len(data.class_names))
    train_batches, val_batches = _batches(recipe, data)
    compile_model(model, recipe, steps_per_epoch=len(train_batches))
    if resuming:
        print(f"resuming interrupted run from {run.checkpoints}")
    started = time.perf_counter()
    _fit(model, run, train_batches, val_batches if len(data.val) else None, recipe.train.epochs, extra_callbacks)
    train_seconds = time.perf_counter() - started
    save_model(model, run.model)

    metrics = _metrics(recipe, model, data, train_seconds)
    if recipe.qat.enabled:
        from edgecnn.train.qat_stage import quantisation_aware_fine_tune

        metrics["qat"] = quantisation_aware_fine_tune(
            recipe, run, model, data, calibration.take(recipe.export.calibration_images), train_batches, val_batches
        )
    plot_history(run.history, run.plots / "training_curves.png", title=recipe.name)
    plot_confusion(metrics["test"]["confusion_matrix"], data.class_names, run.plots / "confusion_matrix.png")
    atomic.write_json(run.metrics, metrics)
    print(f"test top-1 {metrics['test']['top1']:.2%} — run saved in {run.root}")
    return run


def build_model(recipe: Recipe, num_classes: int) -> keras.Model:
    """The recipe's model (architecture defaults for every field the recipe leaves null), not yet compiled."""
    model = create(recipe.model.name, num_classes, recipe.data.image_size, **recipe.model.arguments())
    _set_batchnorm_momentum(model, recipe.train.batchnorm_momentum)
    return model


def _open_for_training(run: RunDir, overwrite: bool) -> RunDir:
    """The run directory, emptied of a finished run only when `overwrite`; a stale QAT model is removed."""
    if run.is_complete() and overwrite:
        shutil.rmtree(run.root)
    run.root.mkdir(parents=True, exist_ok=True)
    run.model_qat.unlink(missing_ok=True)  # left by an interrupted run: it does not match the new model.keras
    return run


def _record_run(recipe: Recipe, run: RunDir, data: DataSplits) -> None:
    """Write the resolved recipe, labels and skipped-file list into the run."""
    print(data.summary())
    lines = [f"{s.path}\t{s.reason}" for s in data.skipped]
    atomic.write_text(run.skipped, "\n".join(lines) + ("\n" if lines else ""))
    if data.skipped:
        print(f"skipped {len(data.skipped)} unreadable or non-image files (listed in {run.skipped})")
    atomic.write_text(run.recipe, recipe.to_yaml())
    atomic.write_text(run.labels, "\n".join(data.class_names) + "\n")


def _batches(recipe: Recipe, data: DataSplits) -> tuple[ImageBatches, ImageBatches]:
    num_classes = len(data.class_names)
    train_batches = training_batches(recipe, data.train.images, data.train.labels, num_classes)
    val_batches = ImageBatches(data.val.images, data.val.labels, num_classes, recipe.train.batch_size, shuffle=False)
    return train_batches, val_batches


def _fit(
    model: keras.Model, run: RunDir, train_batches: ImageBatches, val_batches: ImageBatches | None, epochs: int,
    extra_callbacks: list[keras.callbacks.Callback] | None,
) -> None:
    """Fit with Keras' resume mechanism and history logging; a resumed run's duplicate epochs are dropped."""
    model.fit(
        train_batches,
        validation_data=val_batches,
        epochs=epochs,
        callbacks=[
            # Keras' own resume mechanism: saves every epoch, restores on restart, deletes itself when done.
            keras.callbacks.BackupAndRestore(str(run.checkpoints)),
            TrackEpoch(train_batches),
            keras.callbacks.CSVLogger(str(run.history), append=True),
            *(extra_callbacks or []),
        ],
        verbose=1 if sys.stdout.isatty() else 2,
    )
    dedupe_history(run.history)


def compile_model(model: keras.Model, recipe: Recipe, steps_per_epoch: int) -> None:
    """Compile `model` with the recipe's optimizer, schedule (over all its epochs) and loss."""
    total_steps = steps_per_epoch * recipe.train.epochs
    model.compile(
        optimizer=optimizer(recipe, recipe.train.learning_rate, total_steps), loss=loss(recipe), metrics=["accuracy"]
    )


def _metrics(recipe: Recipe, model: keras.Model, data: DataSplits, train_seconds: float) -> dict:
    test_probs = model.predict(data.test.images.astype(np.float32), batch_size=256, verbose=0)
    return {
        "model": recipe.model.name,
        "backend": keras.backend.backend(),
        "train_seconds": round(train_seconds, 1),
        "epochs": recipe.train.epochs,
        "params": int(model.count_params()),
        "data": {split: len(getattr(data, split)) for split in ("train", "val", "test")},
        "skipped_files": len(data.skipped),
        "test": classification_report(data.test.labels, test_probs, data.class_names).to_dict(),
    }


def _seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _set_batchnorm_momentum(model: keras.Model, momentum: float | None) -> None:
    if momentum is None:
        return
    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum

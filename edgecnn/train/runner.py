"""Train a recipe into a run directory: data → model → fit (resumable) → model, labels, history, metrics, plots."""

from __future__ import annotations

import csv
import math
import os
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from edgecnn import atomic
from edgecnn.augment import build_augmentation
from edgecnn.bench.evaluate import classification_report
from edgecnn.config import Recipe
from edgecnn.data import DataSplits, load_splits
from edgecnn.export.calibration import calibration_images
from edgecnn.models import create
from edgecnn.run_dir import RunDir
from edgecnn.train.batches import ImageBatches
from edgecnn.train.reports import plot_history

OPTIMIZERS = {
    "adam": lambda lr, wd: keras.optimizers.Adam(lr, weight_decay=wd or None),
    "adamw": lambda lr, wd: keras.optimizers.AdamW(lr, weight_decay=wd or 0.004),
    "sgd": lambda lr, wd: keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd or None),
    "rmsprop": lambda lr, wd: keras.optimizers.RMSprop(lr, weight_decay=wd or None),
}


SCHEDULES = {
    "cosine": lambda lr, total_steps: keras.optimizers.schedules.CosineDecay(lr, max(total_steps, 1)),
    "constant": lambda lr, total_steps: lr,
}



def load_data(recipe: Recipe) -> DataSplits:
    """The recipe's data splits (seeded with the training seed, so export and eval see the same split)."""
    return load_splits(**data_arguments(recipe))


def data_arguments(recipe: Recipe) -> dict:
    """Keyword arguments of edgecnn.data.load_splits for this recipe; also recorded in every bundle."""
    return {**recipe.data.model_dump(), "seed": recipe.train.seed}


def train(
    recipe: Recipe,
    out_root: str | Path = "runs",
    overwrite: bool = False,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
) -> RunDir:
    """Train `recipe` into out_root/<name>; an interrupted run resumes from its last epoch checkpoint."""
    run = RunDir(Path(out_root) / recipe.name)
    if run.is_complete():
        if not overwrite:
            raise FileExistsError(
                f"{run.root} already holds a finished run; pass --overwrite or give the recipe another name"
            )
        shutil.rmtree(run.root)
    resuming = run.checkpoints.is_dir()
    run.root.mkdir(parents=True, exist_ok=True)
    run.model_qat.unlink(missing_ok=True)  # left by an interrupted run: it does not match the new model.keras
    _seed_everything(recipe.train.seed)

    data = load_data(recipe)
    print(data.summary())
    _write_skipped(run, data)
    atomic.write_text(run.recipe, recipe.to_yaml())
    atomic.write_text(run.labels, "\n".join(data.class_names) + "\n")

    model = create(
        recipe.model.name, len(data.class_names), recipe.data.image_size,
        width=recipe.model.width, weights=recipe.model.weights, dropout=recipe.model.dropout,
    )
    _set_batchnorm_momentum(model, recipe.train.batchnorm_momentum)
    steps_per_epoch = math.ceil(len(data.train) / recipe.train.batch_size)
    total_steps = steps_per_epoch * recipe.train.epochs
    learning_rate = SCHEDULES[recipe.train.schedule](recipe.train.learning_rate, total_steps)
    model.compile(
        optimizer=OPTIMIZERS[recipe.train.optimizer](learning_rate, recipe.train.weight_decay),
        loss=_loss(recipe),
        metrics=["accuracy"],
    )
    num_classes = len(data.class_names)
    train_batches = ImageBatches(
        data.train.images, data.train.labels, num_classes, recipe.train.batch_size,
        augmentation=build_augmentation(recipe.augment, recipe.train.seed), seed=recipe.train.seed,
    )
    val_batches = ImageBatches(data.val.images, data.val.labels, num_classes, recipe.train.batch_size, shuffle=False)
    if resuming:
        print(f"resuming interrupted run from {run.checkpoints}")
    started = time.perf_counter()
    model.fit(
        train_batches,
        validation_data=val_batches if len(data.val) else None,
        epochs=recipe.train.epochs,
        callbacks=[
            # Keras' own resume mechanism: saves every epoch, restores on restart, deletes itself when done.
            keras.callbacks.BackupAndRestore(str(run.checkpoints)),
            keras.callbacks.CSVLogger(str(run.history), append=True),
            *(extra_callbacks or []),
        ],
        verbose=1 if sys.stdout.isatty() else 2,
    )
    train_seconds = time.perf_counter() - started
    _dedupe_history(run.history)

    _save_model(model, run.model)
    test_probs = model.predict(data.test.images.astype(np.float32), batch_size=256, verbose=0)
    metrics = {
        "model": recipe.model.name,
        "backend": keras.backend.backend(),
        "train_seconds": round(train_seconds, 1),
        "epochs": recipe.train.epochs,
        "params": int(model.count_params()),
        "data": {split: len(getattr(data, split)) for split in ("train", "val", "test")},
        "skipped_files": len(data.skipped),
        "test": classification_report(data.test.labels, test_probs, data.class_names).to_dict(),
    }
    if recipe.qat.enabled:
        metrics["qat"] = _quantisation_aware_fine_tune(recipe, run, model, data, train_batches, val_batches)
    plot_history(run.history, run.plots / "training_curves.png", title=recipe.name)
    _plot_confusion(metrics["test"]["confusion_matrix"], data.class_names, run.plots / "confusion_matrix.png")
    atomic.write_json(run.metrics, metrics)
    print(f"test top-1 {metrics['test']['top1']:.2%} — run saved in {run.root}")
    return run


def _loss(recipe: Recipe) -> keras.losses.Loss:
    return keras.losses.CategoricalCrossentropy(label_smoothing=recipe.train.label_smoothing)


def _quantisation_aware_fine_tune(
    recipe: Recipe, run: RunDir, model: keras.Model, data: DataSplits,
    train_batches: ImageBatches, val_batches: ImageBatches,
) -> dict:
    """Fine-tune a fake-quantised copy of the trained model, save it as model_qat.keras, return its metrics.

    Ranges are calibrated on the sample int8 export calibrates on, so the QAT model trains against the ranges the
    converter will measure.
    """
    from edgecnn.train import qat

    calibration = calibration_images(data.train, recipe.export.calibration_images, seed=recipe.train.seed)
    total_steps = len(train_batches) * recipe.qat.epochs
    learning_rate = SCHEDULES[recipe.train.schedule](recipe.qat.learning_rate, total_steps)
    print(f"quantisation-aware fine-tuning: {recipe.qat.epochs} epochs at learning rate {recipe.qat.learning_rate}")
    started = time.perf_counter()
    qat_model = qat.fine_tune(
        model, calibration, train_batches, recipe.qat.epochs,
        OPTIMIZERS[recipe.train.optimizer](learning_rate, recipe.train.weight_decay), _loss(recipe),
        validation_data=val_batches if len(data.val) else None, verbose=1 if sys.stdout.isatty() else 2,
    )
    seconds = time.perf_counter() - started
    _save_model(qat_model, run.model_qat)

    def top1(model: keras.Model, split) -> float | None:
        if not len(split):
            return None
        probs = model.predict(split.images.astype(np.float32), batch_size=256, verbose=0)
        return classification_report(split.labels, probs, data.class_names).top1

    report = {
        "model_file": run.model_qat.name,
        "epochs": recipe.qat.epochs,
        "learning_rate": recipe.qat.learning_rate,
        "calibration_images": int(len(calibration)),
        "train_seconds": round(seconds, 1),
        "val_top1": top1(qat_model, data.val),  # fake-quantised: what int8 TFLite export of it should score
        "float_val_top1": top1(model, data.val),
        "test_top1": top1(qat_model, data.test),
    }
    if report["val_top1"] is not None:
        print(f"QAT val top-1 {report['val_top1']:.2%} (float {report['float_val_top1']:.2%})")
    print(f"QAT model saved in {run.model_qat}")
    return report


def _seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _set_batchnorm_momentum(model: keras.Model, momentum: float | None) -> None:
    if momentum is None:
        return
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def _save_model(model: keras.Model, path: Path) -> None:
    # Keras insists on the .keras suffix, so the temporary file keeps it and is renamed into place.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def _write_skipped(run: RunDir, data: DataSplits) -> None:
    lines = [f"{s.path}\t{s.reason}" for s in data.skipped]
    atomic.write_text(run.skipped, "\n".join(lines) + ("\n" if lines else ""))
    if data.skipped:
        print(f"skipped {len(data.skipped)} unreadable or non-image files (listed in {run.skipped})")


def _dedupe_history(path: Path) -> None:
    """Keep the last row per epoch: a resumed run may have logged an epoch twice."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    by_epoch = {row["epoch"]: row for row in rows}
    fields = list(rows[0].keys())
    lines = [",".join(fields)] + [",".join(row[k] for k in fields) for row in by_epoch.values()]
    atomic.write_text(path, "\n".join(lines) + "\n")


def _plot_confusion(matrix, labels, path: Path) -> None:
    from edgecnn.bench.report import plot_confusion_matrix

    plot_confusion_matrix(np.asarray(matrix), labels, path, title="test confusion matrix")

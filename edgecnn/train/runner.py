"""Train a recipe into a run directory: data → model → fit (resumable) → model, labels, history, metrics, plots.

The run directory also receives what export needs (split record, calibration sample, check images), so export never
re-reads the raw data.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import keras
import numpy as np

from edgecnn import atomic
from edgecnn.config import AugmentConfig, Recipe
from edgecnn.data import DataSplits, FileSet, ImageSet, load_splits
from edgecnn.data.calibration import LARGER_CALIBRATION_FACTOR, calibration_sample
from edgecnn.data.stream import read_part
from edgecnn.errors import RecipeError, RunExistsError
from edgecnn.metrics import classification_report
from edgecnn.models import create
from edgecnn.quant.graph import leaf_layers
from edgecnn.run_dir import RunDir
from edgecnn.train.batches import ImageBatches, training_batches
from edgecnn.train.engines import check_distribute, cpu_precision_note, distribution_scope, precision_policy
from edgecnn.train.fit import compile_for_phase, fit_phases
from edgecnn.train.phases import plan
from edgecnn.train.predict import predict_part, tta_part
from edgecnn.train.preview import write_preview
from edgecnn.train.reports import (
    plot_confusion,
    plot_history,
    plot_per_class_accuracy,
    plot_worst_misclassified,
    worst_misclassified,
)
from edgecnn.train.saving import save_model


def load_data(recipe: Recipe) -> DataSplits:
    """The recipe's data splits (seeded with the training seed, so every stage sees the same split); a folder
    larger than data.cache_budget_mb streams."""
    return load_splits(**recipe.data_settings(), stream=True)


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
    check_distribute(recipe.train.distribute)  # before anything is loaded or written
    _seed_everything(recipe.train.seed)
    data = load_data(recipe)  # before the run directory is touched: bad data leaves nothing behind
    run = _open_for_training(run, overwrite)
    resuming = run.checkpoints.is_dir()
    _record_run(recipe, run, data)
    calibration = calibration_sample(
        data.train, LARGER_CALIBRATION_FACTOR * recipe.export.calibration_images, seed=recipe.train.seed
    )
    run.write_export_inputs(recipe, data, calibration)

    train_batches, val_batches = _batches(recipe, data)
    if recipe.augment != AugmentConfig():
        write_preview(recipe, data.train, run.plots / "augmented_samples.png")
    if resuming:
        print(f"resuming interrupted run from {run.checkpoints}")
    started = time.perf_counter()
    with precision_policy(recipe.train.precision), distribution_scope(recipe.train.distribute) as devices:
        if note := cpu_precision_note(recipe.train.precision, devices):
            print(note)
        if recipe.train.distribute == "data_parallel":
            if recipe.train.batch_size % len(devices):
                raise RecipeError(
                    f"train.batch_size ({recipe.train.batch_size}) must be a multiple of the {len(devices)} devices "
                    "train.distribute: data_parallel splits each batch over"
                )
            train_batches.batch_multiple = val_batches.batch_multiple = len(devices)
        model = build_model(recipe, len(data.class_names))
        phase_reports = fit_phases(
            model, recipe, run, train_batches, val_batches if len(data.val) else None, extra_callbacks
        )
    train_seconds = time.perf_counter() - started
    if recipe.train.precision != "float32":
        model = float32_copy(recipe, model, len(data.class_names))
    save_model(model, run.model)

    metrics, test_probs, test_positions = _metrics(recipe, model, data, train_seconds)
    metrics.update(phases=phase_reports, precision=recipe.train.precision, distribute=recipe.train.distribute,
                   devices=devices)
    if recipe.qat.enabled:
        from edgecnn.train.qat_stage import quantisation_aware_fine_tune

        metrics["qat"] = quantisation_aware_fine_tune(
            recipe, run, model, data, calibration.take(recipe.export.calibration_images), train_batches, val_batches
        )
    plot_history(run.history, run.plots / "training_curves.png", title=recipe.name)
    plot_confusion(metrics["test"]["confusion_matrix"], data.class_names, run.plots / "confusion_matrix.png")
    plot_per_class_accuracy(metrics["test"]["per_class"], run.plots / "per_class_accuracy.png", recipe.name)
    test_labels = data.test.labels[test_positions]
    worst = worst_misclassified(test_labels, test_probs, 24)
    shown = np.sort(np.asarray([i for i, _, _ in worst], np.int64))  # only these images are read for the plot
    plot_worst_misclassified(read_part(data.test, test_positions[shown])[0], test_labels[shown], test_probs[shown],
                             data.class_names, run.plots / "worst_misclassified.png")
    metrics["test"]["worst_misclassified"] = [
        {"index": int(test_positions[i]), "true": data.class_names[test_labels[i]], "predicted": data.class_names[p],
         "probability": round(prob, 4)}
        for i, p, prob in worst
    ]
    metrics["skipped_files"] = _record_unreadable(run, data)
    atomic.write_json(run.metrics, metrics)
    print(f"test top-1 {metrics['test']['top1']:.2%} — run saved in {run.root}")
    return run


def build_model(recipe: Recipe, num_classes: int) -> keras.Model:
    """The recipe's model (architecture defaults for every field the recipe leaves null), not yet compiled."""
    model = create(recipe.model.name, num_classes, recipe.data.image_size, **recipe.model.arguments())
    _set_batchnorm_momentum(model, recipe.train.batchnorm_momentum)
    if keras.config.dtype_policy().name != "float32":
        model.layers[-1].dtype_policy = "float32"  # the softmax (and the loss on it) stays float32 in mixed precision
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


def _record_unreadable(run: RunDir, data: DataSplits) -> int:
    """Add the files found unreadable while streaming to skipped.txt; the number of files skipped in all."""
    found = {s.path: s for part in (data.train, data.val, data.test) if isinstance(part, FileSet)
             for s in part.unreadable.entries()}
    if found:
        print(f"{len(found)} files failed to decode while streaming and were left out (added to {run.skipped})")
        lines = [f"{s.path}\t{s.reason}" for s in [*data.skipped, *found.values()]]
        atomic.write_text(run.skipped, "\n".join(lines) + "\n")
    return len(data.skipped) + len(found)


def _pixels(part: ImageSet | FileSet) -> np.ndarray | FileSet:
    """What ImageBatches reads a part's images from: its array, or the files to stream."""
    return part if isinstance(part, FileSet) else part.images


def _batches(recipe: Recipe, data: DataSplits) -> tuple[ImageBatches, ImageBatches]:
    num_classes = len(data.class_names)
    train_batches = training_batches(recipe, _pixels(data.train), data.train.labels, num_classes)
    val_batches = ImageBatches(_pixels(data.val), data.val.labels, num_classes, recipe.train.batch_size,
                               shuffle=False)
    return train_batches, val_batches


def compile_model(model: keras.Model, recipe: Recipe, steps_per_epoch: int) -> None:
    """Compile `model` for the recipe's first phase (optimizer, schedule with warm-up, loss)."""
    compile_for_phase(model, recipe, plan(recipe)[0], steps_per_epoch)


def float32_copy(recipe: Recipe, model: keras.Model, num_classes: int) -> keras.Model:
    """The same architecture built under the float32 policy with `model`'s weights: what gets saved and exported."""
    copy = build_model(recipe, num_classes)
    for target, source in zip(copy.weights, model.weights, strict=True):
        target.assign(keras.ops.cast(source, target.dtype))
    return copy


def _metrics(
    recipe: Recipe, model: keras.Model, data: DataSplits, train_seconds: float
) -> tuple[dict, np.ndarray, np.ndarray]:
    """The run's metrics.json content, the test split's probabilities and the test positions they are for (a
    streamed test split loses the files that fail to decode)."""
    def predict(images: np.ndarray) -> np.ndarray:
        return model.predict(images.astype(np.float32), batch_size=256, verbose=0)

    test_probs, test_positions = predict_part(model, data.test)
    test = data.test.subset(test_positions)
    report = {
        "model": recipe.model.name,
        "backend": keras.backend.backend(),
        "train_seconds": round(train_seconds, 1),
        "epochs": recipe.train.epochs,
        "params": int(model.count_params()),
        "data": {split: len(getattr(data, split)) for split in ("train", "val", "test")},
        "skipped_files": len(data.skipped),
        "streamed": data.streamed,
        "test": classification_report(test.labels, test_probs, data.class_names).to_dict(),
    }
    if recipe.train.tta and len(test):
        report["test_tta"] = {view: tta_part(predict, test, view) for view in recipe.train.tta}
    return report, test_probs, test_positions


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

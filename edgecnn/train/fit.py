"""Fit a model through the recipe's phases, resumable mid-phase, logging history.csv with phase and learning rate.

Each phase is recompiled (new optimizer, its own schedule and warm-up) and fitted over its global epoch range with a
ResumeCheckpoint (checkpoints/ for a single phase, checkpoints/<phase>/ per phase), so an interrupted run resumes
inside the phase it stopped in; a finished phase leaves its weights in checkpoints/<phase>.done.npz, so a restart
skips it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import keras
import numpy as np

from edgecnn.config import Recipe
from edgecnn.run_dir import RunDir
from edgecnn.train.batches import ImageBatches
from edgecnn.train.checkpoint import ResumeCheckpoint, write
from edgecnn.train.history import dedupe_history
from edgecnn.train.mixing import TrackEpoch
from edgecnn.train.optim import current_learning_rate, loss, optimizer
from edgecnn.train.phases import SINGLE_PHASE, Phase, phase_of_epoch, plan, set_trainable


class LogLearningRate(keras.callbacks.Callback):
    """Adds the learning rate at each epoch's end to the logs (history.csv, the curves plot)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = current_learning_rate(self.model.optimizer)


def compile_for_phase(model: keras.Model, recipe: Recipe, phase: Phase, steps_per_epoch: int) -> None:
    """Compile `model` with the recipe's optimizer at the phase's learning rate, schedule and warm-up, and loss."""
    model.compile(
        optimizer=optimizer(recipe, phase.learning_rate, steps_per_epoch * phase.epochs, phase.schedule,
                            warmup_steps=steps_per_epoch * phase.warmup_epochs),
        loss=loss(recipe),
        metrics=["accuracy"],
    )


def fit_phases(
    model: keras.Model, recipe: Recipe, run: RunDir, train_batches: ImageBatches, val_batches: ImageBatches | None,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
) -> list[dict]:
    """Train every phase of the recipe (skipping those a previous attempt finished); one report per phase."""
    phases = plan(recipe)
    single = len(phases) == 1 and phases[0].name == SINGLE_PHASE
    finished = [i for i, phase in enumerate(phases) if _done_file(run, phase).is_file()]
    if finished and not single:
        _load_weights(model, _done_file(run, phases[finished[-1]]))
    reports = []
    for i, phase in enumerate(phases):
        trainable = set_trainable(model, phase, recipe.model.name)
        reports.append({
            "name": phase.name, "first_epoch": phase.first_epoch + 1, "epochs": phase.epochs,
            "learning_rate": phase.learning_rate, "schedule": phase.schedule, "warmup_epochs": phase.warmup_epochs,
            **trainable,
        })
        if finished and i <= finished[-1] and not single:
            print(f"phase {phase.name}: finished by an earlier attempt, skipped")
            continue
        compile_for_phase(model, recipe, phase, len(train_batches))
        if not single:
            print(f"phase {phase.name}: epochs {phase.first_epoch + 1}-{phase.end_epoch} at learning rate "
                  f"{phase.learning_rate:g}, {trainable['trainable_params']:,} trainable parameters")
        backup = run.checkpoints if single else run.checkpoints / phase.name
        model.fit(
            train_batches,
            validation_data=val_batches,
            initial_epoch=phase.first_epoch,
            epochs=phase.end_epoch,
            callbacks=[
                # First, so an epoch's state is saved before any later callback can stop the run.
                ResumeCheckpoint(backup, delete_checkpoint=single),
                TrackEpoch(train_batches),
                LogLearningRate(),
                keras.callbacks.CSVLogger(str(run.history), append=True),
                *(extra_callbacks or []),
            ],
            verbose=1 if sys.stdout.isatty() else 2,
        )
        if not single:
            _save_weights(model, _done_file(run, phase))  # before the phase's backup goes: a crash loses nothing
            shutil.rmtree(backup, ignore_errors=True)
    if not single:
        shutil.rmtree(run.checkpoints, ignore_errors=True)
    dedupe_history(run.history, phase_of=lambda epoch: phase_of_epoch(phases, epoch))
    return reports


def _done_file(run: RunDir, phase: Phase) -> Path:
    return run.checkpoints / f"{phase.name}.done.npz"


def _save_weights(model: keras.Model, path: Path) -> None:
    """Every model variable by its path (independent of which are trainable), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, {v.path: keras.ops.convert_to_numpy(v) for v in model.weights})


def _load_weights(model: keras.Model, path: Path) -> None:
    with np.load(path, allow_pickle=False) as stored:
        for variable in model.weights:
            variable.assign(stored[variable.path])

"""Resume-from-last-epoch for `model.fit`: one .npz of the model's weights, the optimizer's state and the epoch.

`ResumeCheckpoint` is a drop-in for Keras' `BackupAndRestore` (same epoch semantics, same `delete_checkpoint`), built
for cost: Keras' save walks the whole object graph and writes one HDF5 dataset per variable every epoch, while this
copies the variables to numpy on the training thread and writes the file from a background thread, atomically. A
checkpoint that does not match the model, or cannot be read, is an error naming the file: a silent restart would
throw away the epochs it holds.
"""

from __future__ import annotations

import os
import shutil
import threading
import zipfile
from pathlib import Path

import keras
import numpy as np

from edgecnn.atomic import temporary_sibling
from edgecnn.errors import RunDirError

CHECKPOINT_FILE = "resume.npz"
EPOCH_KEY = "epoch"  # the next epoch to run, as BackupAndRestore records it
# Too many names make the error unreadable; the first few say what went wrong.
_NAMES_SHOWN = 5


class ResumeCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state and epoch to `directory`/resume.npz at each epoch's end; a later fit resumes.

    On train begin an existing checkpoint is loaded and fit continues at the epoch after the one it recorded, as
    `keras.callbacks.BackupAndRestore` does. `delete_checkpoint` removes `directory` once training finishes.
    """

    def __init__(self, directory: str | Path, delete_checkpoint: bool = True) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.path = self.directory / CHECKPOINT_FILE
        self.delete_checkpoint = delete_checkpoint
        self._set_initial_epoch = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        _wait_for_write(self.path)  # an interrupted fit in this process may still be writing it
        if not self.path.is_file():
            return
        if not self.model.built:
            raise ValueError(f"{self.path}: the model must be built before fit() to resume from a checkpoint")
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # its variables must exist to take the stored values
        self.model._initial_epoch = restore(self.model, self.path)
        self._set_initial_epoch = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        state = snapshot(self.model, epoch + 1)
        _wait_for_write(self.path)  # one write at a time: never an older snapshot renamed over a newer one
        self.directory.mkdir(parents=True, exist_ok=True)  # now, so a resume is visible as soon as an epoch ends
        _start_write(self.path, state)

    def on_train_end(self, logs: dict | None = None) -> None:
        _wait_for_write(self.path)
        if self._set_initial_epoch:
            # Keras reads model._initial_epoch in every later fit too: a stale value would make the next phase
            # start at this phase's resume epoch.
            self.model._initial_epoch = None
            self._set_initial_epoch = False
        if self.delete_checkpoint:
            shutil.rmtree(self.directory, ignore_errors=True)


def state_variables(model: keras.Model) -> dict[str, keras.Variable]:
    """Every variable a checkpoint holds, by a name that is stable across processes and model rebuilds.

    Model weights go under "model/<path>". Optimizer variables go under "optimizer/<path inside the optimizer>":
    Keras numbers optimizer names per process (adam, adam_1, ...), so their own prefix is dropped; a wrapped optimizer
    (LossScaleOptimizer's inner one) is "optimizer1/...". Random-seed state is left out, as BackupAndRestore leaves it
    out: its path is numbered per process too.
    """
    named = [(f"model/{variable.path}", variable) for variable in model.weights]
    optimizer = model.optimizer
    if optimizer is not None and optimizer.built:
        owners: list[str] = []
        for variable in optimizer.variables:
            owner, _, name = variable.path.partition("/")
            if owner not in owners:
                owners.append(owner)
            named.append((f"optimizer{owners.index(owner) or ''}/{name}", variable))
    variables: dict[str, keras.Variable] = {}
    for name, variable in named:
        if name in variables:
            raise RunDirError(f"two variables would be checkpointed as {name!r}: a checkpoint could not tell them "
                              "apart; give the layers distinct names")
        variables[name] = variable
    return variables


def snapshot(model: keras.Model, next_epoch: int) -> dict[str, np.ndarray]:
    """The model's checkpoint state as numpy copies (convert_to_numpy copies on every backend), plus `next_epoch`."""
    state = {name: keras.ops.convert_to_numpy(variable) for name, variable in state_variables(model).items()}
    state[EPOCH_KEY] = np.asarray(next_epoch, np.int64)
    return state


def write(path: Path, state: dict[str, np.ndarray]) -> None:
    """Write `state` to `path` as an uncompressed .npz, atomically: a crash leaves the previous file whole."""
    with temporary_sibling(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **state)
            f.flush()
            os.fsync(f.fileno())  # the rename must not reach the disk before the data


def read(path: Path) -> dict[str, np.ndarray]:
    """Every array in the checkpoint at `path`, or RunDirError naming the file when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            state = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise RunDirError(f"{path}: unreadable resume checkpoint ({exc}); delete {path.parent} to restart this "
                          "training from its first epoch") from exc
    epoch = state.pop(EPOCH_KEY, None)
    if epoch is None or epoch.shape != () or epoch.dtype.kind not in "iu":
        raise RunDirError(f"{path}: resume checkpoint has no integer {EPOCH_KEY!r} entry; delete {path.parent} to "
                          "restart this training from its first epoch")
    state[EPOCH_KEY] = epoch
    return state


def restore(model: keras.Model, path: Path) -> int:
    """Assign the checkpoint at `path` to `model` (weights and a built optimizer); the epoch to resume at.

    Raises RunDirError naming the file when it lists other variables than the model has, or other shapes.
    """
    state = read(path)
    next_epoch = int(state.pop(EPOCH_KEY))
    variables = state_variables(model)
    missing = sorted(set(variables) - set(state))
    unexpected = sorted(set(state) - set(variables))
    reshaped = [f"{name} {state[name].shape} (model {tuple(variables[name].shape)})"
                for name in sorted(set(state) & set(variables)) if state[name].shape != tuple(variables[name].shape)]
    problems = [f"{label}: {_listing(names)}" for label, names in
                (("missing", missing), ("not in the model", unexpected), ("other shape", reshaped)) if names]
    if problems:
        raise RunDirError(f"{path} does not match the model being trained ({'; '.join(problems)}); resume with the "
                          f"recipe that wrote it, or delete {path.parent} to restart this training from its first "
                          "epoch")
    for name, variable in variables.items():
        variable.assign(state[name])
    return next_epoch


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown if len(names) <= _NAMES_SHOWN else f"{shown} and {len(names) - _NAMES_SHOWN} more"


class _Write:
    """One checkpoint being written from a background thread; `wait` joins it and re-raises what it raised."""

    def __init__(self, path: Path, state: dict[str, np.ndarray]) -> None:
        self.error: BaseException | None = None
        # Not a daemon: a process ending on an exception still finishes the write it started.
        self.thread = threading.Thread(target=self._run, args=(path, state), name=f"checkpoint {path}")
        self.thread.start()

    def _run(self, path: Path, state: dict[str, np.ndarray]) -> None:
        try:
            write(path, state)
        except BaseException as exc:  # handed to whoever waits: a thread's exception would only be printed
            self.error = exc

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


# By path, not by callback: a fit interrupted by an exception never reaches on_train_end, and the callback of the
# next fit resuming from the same file must wait for that write.
_WRITES: dict[Path, _Write] = {}
_WRITES_LOCK = threading.Lock()


def wait_for_checkpoint(directory: str | Path) -> None:
    """Block until a checkpoint being written into `directory` is on disk; re-raise the error its write raised.

    Needed only after a fit ended on an exception (on_train_end waits otherwise) and before reading the file.
    """
    _wait_for_write(Path(directory) / CHECKPOINT_FILE)


def _start_write(path: Path, state: dict[str, np.ndarray]) -> None:
    with _WRITES_LOCK:
        _WRITES[path.resolve()] = _Write(path, state)


def _wait_for_write(path: Path) -> None:
    with _WRITES_LOCK:
        pending = _WRITES.pop(path.resolve(), None)
    if pending is not None:
        pending.wait()

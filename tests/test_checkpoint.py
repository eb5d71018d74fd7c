"""ResumeCheckpoint: a resumed fit continues exactly where the interrupted one stopped (weights, Adam state, epoch),
a checkpoint that does not fit the model or cannot be read is an error naming the file, and a failed write leaves
the previous checkpoint whole. Runs on whichever Keras backend KERAS_BACKEND selects."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from edgecnn.errors import RunDirError

keras = pytest.importorskip("keras")

from edgecnn.models.registry import create  # noqa: E402
from edgecnn.train.checkpoint import (  # noqa: E402
    CHECKPOINT_FILE,
    ResumeCheckpoint,
    read,
    wait_for_checkpoint,
    write,
)

IMAGES = 24
BATCH_SIZE = 8
STEPS_PER_EPOCH = IMAGES // BATCH_SIZE


class Interrupted(Exception):
    """Stands in for a crash or Ctrl-C after an epoch's checkpoint is written."""


class StopAfter(keras.callbacks.Callback):
    """Raises Interrupted at the end of `epoch`, after recording the weights and Adam's state at that moment."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch
        self.state: dict[str, np.ndarray] = {}

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.state = _state(self.model)
            raise Interrupted


class Record(keras.callbacks.Callback):
    """The state at train begin (after every earlier callback's on_train_begin) and the epochs that ran."""

    def __init__(self):
        super().__init__()
        self.at_begin: dict[str, np.ndarray] = {}
        self.epochs: list[int] = []

    def on_train_begin(self, logs=None):
        self.at_begin = _state(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def _state(model: keras.Model) -> dict[str, np.ndarray]:
    state = {f"model/{v.path}": keras.ops.convert_to_numpy(v) for v in model.weights}
    if model.optimizer.built:
        state["iterations"] = keras.ops.convert_to_numpy(model.optimizer.iterations)
        state.update({f"optimizer/{v.path.partition('/')[2]}": keras.ops.convert_to_numpy(v)
                      for v in model.optimizer.variables})
    return state


def _model(num_classes: int = 3) -> keras.Model:
    model = create("tiny_cnn", num_classes, 16, dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    return model


def _data(num_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (IMAGES, 16, 16, 3)).astype(np.float32), np.arange(IMAGES) % num_classes


def _fit(model: keras.Model, callbacks: list, epochs: int = 3, initial_epoch: int = 0, num_classes: int = 3):
    images, labels = _data(num_classes)
    return model.fit(images, labels, batch_size=BATCH_SIZE, epochs=epochs, initial_epoch=initial_epoch,
                     shuffle=False, callbacks=callbacks, verbose=0)


def _interrupted_checkpoint(directory: Path, num_classes: int = 3, wait: bool = True) -> StopAfter:
    """A checkpoint in `directory` written at the end of epoch 1 (0-based) of a 3-epoch fit that then crashed;
    `wait` for its write to finish (else it may still be in flight)."""
    keras.utils.set_random_seed(1)
    stop = StopAfter(1)
    with pytest.raises(Interrupted):
        _fit(_model(num_classes), [ResumeCheckpoint(directory), stop], num_classes=num_classes)
    if wait:
        wait_for_checkpoint(directory)
    return stop


def test_resume_restores_weights_optimizer_state_and_epoch(tmp_path: Path) -> None:
    stop = _interrupted_checkpoint(tmp_path / "backup")
    assert read(tmp_path / "backup" / CHECKPOINT_FILE)["epoch"] == 2  # the next epoch to run

    keras.utils.set_random_seed(2)  # a different initialisation: everything must come from the checkpoint
    resumed, record = _model(), Record()
    _fit(resumed, [ResumeCheckpoint(tmp_path / "backup", delete_checkpoint=False), record])
    assert record.epochs == [2]
    assert record.at_begin.keys() == stop.state.keys()
    assert int(record.at_begin["iterations"]) == 2 * STEPS_PER_EPOCH
    for name, value in stop.state.items():
        np.testing.assert_array_equal(record.at_begin[name], value, err_msg=name)
    assert read(tmp_path / "backup" / CHECKPOINT_FILE)["epoch"] == 3  # kept: delete_checkpoint=False

    keras.utils.set_random_seed(1)
    uninterrupted = _model()
    _fit(uninterrupted, [])
    for name, value in _state(uninterrupted).items():
        np.testing.assert_allclose(_state(resumed)[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_finished_fit_deletes_its_checkpoint_and_leaves_no_start_epoch_behind(tmp_path: Path) -> None:
    _interrupted_checkpoint(tmp_path / "backup", wait=False)
    model, resumed = _model(), Record()
    _fit(model, [ResumeCheckpoint(tmp_path / "backup"), resumed])
    assert resumed.epochs == [2]  # it waited for the crashed fit's write still in flight
    assert not (tmp_path / "backup").exists()
    record = Record()  # the next fit (the next phase) starts where it is told to, not at the resumed epoch
    _fit(model, [ResumeCheckpoint(tmp_path / "next"), record], epochs=6, initial_epoch=5)
    assert record.epochs == [5]


def test_a_checkpoint_of_another_model_is_an_error_naming_the_file(tmp_path: Path) -> None:
    _interrupted_checkpoint(tmp_path / "backup", num_classes=4)
    path = tmp_path / "backup" / CHECKPOINT_FILE
    with pytest.raises(RunDirError, match=r"resume\.npz does not match the model being trained \(other shape: "
                                          r"model/predictions/bias \(4,\) \(model \(3,\)\)"):
        _fit(_model(3), [ResumeCheckpoint(tmp_path / "backup")])

    state = read(path)
    del state["model/conv0/kernel"]
    state["model/extra/kernel"] = np.zeros(2, np.float32)
    write(path, state)
    with pytest.raises(RunDirError, match=r"missing: model/conv0/kernel; not in the model: model/extra/kernel"):
        _fit(_model(4), [ResumeCheckpoint(tmp_path / "backup")], num_classes=4)
    assert path.is_file()  # left for the user to inspect or delete: never silently restarted


@pytest.mark.parametrize("damage", ["truncated", "garbage", "no epoch"])
def test_a_corrupt_checkpoint_is_an_error_naming_the_file(tmp_path: Path, damage: str) -> None:
    _interrupted_checkpoint(tmp_path / "backup")
    path = tmp_path / "backup" / CHECKPOINT_FILE
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    else:
        state = read(path)
        del state["epoch"]
        write(path, state)
    expected = "resume checkpoint has no integer 'epoch'" if damage == "no epoch" else "unreadable resume checkpoint"
    with pytest.raises(RunDirError, match=rf"^{re.escape(str(path))}: {expected}.*delete .*backup to restart"):
        _fit(_model(), [ResumeCheckpoint(tmp_path / "backup")])


def test_a_failed_write_surfaces_and_leaves_the_previous_checkpoint_whole(tmp_path: Path, monkeypatch) -> None:
    _interrupted_checkpoint(tmp_path / "backup")
    before = (tmp_path / "backup" / CHECKPOINT_FILE).read_bytes()

    def half_written(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", half_written)
    with pytest.raises(OSError, match="No space left on device"):  # raised from the writer thread, not swallowed
        _fit(_model(), [ResumeCheckpoint(tmp_path / "backup")])
    assert [p.name for p in (tmp_path / "backup").iterdir()] == [CHECKPOINT_FILE]  # no temporary file left
    assert (tmp_path / "backup" / CHECKPOINT_FILE).read_bytes() == before

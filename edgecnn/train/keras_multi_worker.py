"""Workaround for Keras 3's TensorFlow trainer under MultiWorkerMirroredStrategy (tensorflow/tensorflow#72388).

With Keras 3.15 and TensorFlow 2.21 every `fit` under `tf.distribute.MultiWorkerMirroredStrategy` fails, a bare
`keras.Model` on `tf.data` as well (Keras 2 trains), in two places of Keras' TensorFlow trainer:
`_maybe_symbolic_build` MEAN-reduces the first PerReplica input batch ("Attempt to convert a value (PerReplica...)"),
and `reduce_per_replica`'s "auto" → MEAN reduces each scalar log along axis 0 ("Invalid reduction dimension 0 for
input with 0 dimensions"). `apply()` replaces just those two: the symbolic build uses one replica's batch (it only
needs shapes), and multi-worker logs are MEAN-reduced across workers without an axis. Training itself, the gradient
all-reduce and everything else stay Keras' and tf.distribute's own.
"""

from __future__ import annotations

from typing import Any

from edgecnn.errors import RecipeError

_applied = False
# what apply() replaces or calls, in keras.src.backend.tensorflow.trainer
_NEEDED = ("reduce_per_replica", "_collective_all_reduce_multi_worker", "TensorFlowTrainer._maybe_symbolic_build")


def _missing(trainer: Any) -> list[str]:
    missing = []
    for name in _NEEDED:
        owner = trainer
        for part in name.split("."):
            owner = getattr(owner, part, None)
        if owner is None:
            missing.append(name)
    return missing


def _first_replica(strategy: Any, value: Any) -> Any:
    import tensorflow as tf

    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def apply() -> None:
    """Patch Keras' TensorFlow trainer, once per process; only `train.distribute: multi_worker` calls this."""
    global _applied
    if _applied:
        return
    import keras
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if missing := _missing(trainer):
        raise RecipeError(
            f"train.distribute: multi_worker: Keras {keras.__version__} has no {', '.join(missing)} in its TensorFlow "
            "trainer, which edgecnn's workaround for tensorflow/tensorflow#72388 replaces; use a Keras release that "
            "has them, or train.distribute: mirrored or none"
        )
    keras_reduce = trainer.reduce_per_replica
    keras_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction == "auto" and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return keras_reduce(values, strategy, reduction)

    def maybe_symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        strategy = self._distribute_strategy
        if iterator is None or strategy is None:
            return keras_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            data_batch = tree.map_structure(lambda value: _first_replica(strategy, value), next(batches))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    _applied = True

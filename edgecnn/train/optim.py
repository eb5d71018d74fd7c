"""Optimizers, learning-rate schedules and the loss a recipe names, shared by float training and QAT fine-tuning."""

from __future__ import annotations

import keras

from edgecnn.config import Recipe

OPTIMIZERS = {
    "adam": lambda lr, wd: keras.optimizers.Adam(lr, weight_decay=wd or None),
    "adamw": lambda lr, wd: keras.optimizers.AdamW(lr, weight_decay=wd or 0.004),
    "sgd": lambda lr, wd: keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd or None),
    "rmsprop": lambda lr, wd: keras.optimizers.RMSprop(lr, weight_decay=wd or None),
}

# name → final fraction of the peak learning rate (Keras' CosineDecay alpha): cosine decays to 0, constant stays.
SCHEDULES = {"cosine": 0.0, "constant": 1.0}


def schedule(
    name: str, learning_rate: float, total_steps: int, warmup_steps: int = 0
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate over `total_steps`: a linear warm-up from 0 over `warmup_steps`, then schedule `name`."""
    alpha = SCHEDULES[name]
    if alpha == 1.0 and not warmup_steps:
        return learning_rate
    if not warmup_steps:
        return keras.optimizers.schedules.CosineDecay(learning_rate, max(total_steps, 1), alpha=alpha)
    return keras.optimizers.schedules.CosineDecay(
        0.0, max(total_steps - warmup_steps, 1), alpha=alpha, warmup_target=learning_rate, warmup_steps=warmup_steps
    )


def optimizer(
    recipe: Recipe, learning_rate: float, total_steps: int, schedule_name: str | None = None, warmup_steps: int = 0
) -> keras.optimizers.Optimizer:
    """The recipe's optimizer at `learning_rate`, following its (or `schedule_name`'s) schedule over `total_steps`."""
    rate = schedule(schedule_name or recipe.train.schedule, learning_rate, total_steps, warmup_steps)
    return OPTIMIZERS[recipe.train.optimizer](rate, recipe.train.weight_decay)


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate the optimizer's next step uses (its schedule read at the current iteration)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def loss(recipe: Recipe) -> keras.losses.Loss:
    """Categorical cross-entropy on one-hot targets, with the recipe's label smoothing."""
    return keras.losses.CategoricalCrossentropy(label_smoothing=recipe.train.label_smoothing)

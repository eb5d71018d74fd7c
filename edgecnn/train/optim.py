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

SCHEDULES = {
    "cosine": lambda lr, total_steps: keras.optimizers.schedules.CosineDecay(lr, max(total_steps, 1)),
    "constant": lambda lr, total_steps: lr,
}


def optimizer(recipe: Recipe, learning_rate: float, total_steps: int) -> keras.optimizers.Optimizer:
    """The recipe's optimizer at `learning_rate`, following its schedule over `total_steps`."""
    schedule = SCHEDULES[recipe.train.schedule](learning_rate, total_steps)
    return OPTIMIZERS[recipe.train.optimizer](schedule, recipe.train.weight_decay)


def loss(recipe: Recipe) -> keras.losses.Loss:
    """Categorical cross-entropy on one-hot targets, with the recipe's label smoothing."""
    return keras.losses.CategoricalCrossentropy(label_smoothing=recipe.train.label_smoothing)

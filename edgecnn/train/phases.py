"""Training phases (transfer learning): which part of the model trains, at which learning rate, for which epochs.

The Keras guide's shape: a head phase with the backbone frozen (its BatchNorm then runs in inference mode, Keras 3
semantics of `trainable=False`), then a fine-tune phase that unfreezes all or the top N blocks with BatchNorm kept
frozen, recompiled at a lower learning rate. A recipe without `train.phases` trains one phase, the whole model.
Epochs are numbered across phases, so history.csv, resuming and the curves see one run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import keras

from edgecnn.config import Recipe
from edgecnn.errors import RecipeError
from edgecnn.models.heads import BACKBONE_NAME
from edgecnn.quant.graph import leaf_layers

# A block is the layer-name prefix up to the block number (block6a_expand_conv → block6a, block_16_project →
# block_16); layers outside numbered blocks group by their first name part (conv1_bn → conv1, top_conv → top).
_BLOCK = re.compile(r"^(.*?block_?\d+[a-z]?)(?:_|$)")

SINGLE_PHASE = "train"


@dataclass(frozen=True)
class Phase:
    name: str
    first_epoch: int  # global epoch index where the phase starts
    epochs: int
    learning_rate: float
    schedule: str
    warmup_epochs: int
    backbone: str  # "frozen" | "trainable"
    unfreeze_blocks: int | None
    train_batchnorm: bool

    @property
    def end_epoch(self) -> int:
        return self.first_epoch + self.epochs


def plan(recipe: Recipe) -> list[Phase]:
    """The recipe's phases with their global epoch ranges (one whole-model phase when it lists none)."""
    train = recipe.train
    if not train.phases:
        return [Phase(SINGLE_PHASE, 0, train.epochs, train.learning_rate, train.schedule, train.warmup_epochs,
                      "trainable", None, True)]
    phases, first = [], 0
    for p in train.phases:
        phases.append(Phase(p.name, first, p.epochs, p.learning_rate, p.schedule or train.schedule, p.warmup_epochs,
                            p.backbone, p.unfreeze_blocks, p.train_batchnorm))
        first += p.epochs
    return phases


def phase_of_epoch(phases: list[Phase], epoch: int) -> str:
    """The name of the phase global epoch `epoch` belongs to."""
    return next((p.name for p in phases if p.first_epoch <= epoch < p.end_epoch), phases[-1].name)


def block_of(layer_name: str) -> str:
    """The block a backbone layer belongs to, from its name."""
    match = _BLOCK.match(layer_name)
    return match.group(1) if match else layer_name.split("_")[0]


def blocks(backbone: keras.Model) -> list[str]:
    """The backbone's blocks that hold weights, input to output."""
    found: list[str] = []
    for layer in leaf_layers(backbone):
        if layer.weights and block_of(layer.name) not in found:
            found.append(block_of(layer.name))
    return found


def backbone_of(model: keras.Model, model_name: str) -> keras.Model:
    """The classifier's nested backbone, or a RecipeError when the architecture has none."""
    try:
        return model.get_layer(BACKBONE_NAME)
    except ValueError:
        raise RecipeError(
            f"train.phases freezes or unfreezes the backbone, but model {model_name} has no layer named "
            f"{BACKBONE_NAME!r}; train it without phases"
        ) from None


def set_trainable(model: keras.Model, phase: Phase, model_name: str) -> dict:
    """Freeze and unfreeze the model for `phase`; returns what trains (for the log and metrics.json)."""
    model.trainable = True
    if phase.name == SINGLE_PHASE and phase.backbone == "trainable" and phase.train_batchnorm:
        return {"backbone": "trainable", "trainable_params": _count(model.trainable_weights)}
    backbone = backbone_of(model, model_name)
    if phase.backbone == "frozen":
        backbone.trainable = False
    else:
        names = blocks(backbone)
        if phase.unfreeze_blocks is not None and phase.unfreeze_blocks > len(names):
            raise RecipeError(
                f"train.phases.{phase.name}.unfreeze_blocks: {phase.unfreeze_blocks} blocks asked, but "
                f"{model_name}'s backbone has {len(names)} ({', '.join(names)})"
            )
        unfrozen = set(names if phase.unfreeze_blocks is None else names[-phase.unfreeze_blocks :])
        for layer in leaf_layers(backbone):
            batchnorm = isinstance(layer, keras.layers.BatchNormalization)
            layer.trainable = block_of(layer.name) in unfrozen and (phase.train_batchnorm or not batchnorm)
    return {
        "backbone": phase.backbone,
        "unfreeze_blocks": phase.unfreeze_blocks,
        "train_batchnorm": phase.train_batchnorm,
        "trainable_params": _count(model.trainable_weights),
    }


def _count(weights) -> int:
    return int(sum(math.prod(w.shape) for w in weights))

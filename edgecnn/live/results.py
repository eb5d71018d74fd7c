"""From probabilities to what is shown and recorded: EMA smoothing, top-k, the uncertain threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNCERTAIN = "uncertain"


class Smoother:
    """Exponential moving average of probabilities: `weight` of the past (0 = no smoothing)."""

    def __init__(self, weight: float = 0.0) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
        self.weight = weight
        self._state: np.ndarray | None = None

    def __call__(self, probabilities: np.ndarray) -> np.ndarray:
        if self.weight == 0.0:
            return probabilities
        if self._state is None or self._state.shape != probabilities.shape:
            self._state = probabilities.astype(np.float32)
        else:
            self._state = self.weight * self._state + (1 - self.weight) * probabilities
        return self._state


@dataclass(frozen=True)
class Decision:
    """The top-k (index, label, probability) of one frame and whether the best is below --min-confidence."""

    top: list[tuple[int, str, float]]
    uncertain: bool

    @property
    def index(self) -> int:
        return self.top[0][0]

    @property
    def label(self) -> str:
        return self.top[0][1]

    @property
    def probability(self) -> float:
        return self.top[0][2]

    @property
    def shown(self) -> str:
        """The label as displayed: `uncertain (label?)` below the threshold."""
        return f"{UNCERTAIN} ({self.label}?)" if self.uncertain else self.label


def decide(probabilities: np.ndarray, labels: list[str], top_k: int, min_confidence: float) -> Decision:
    """Top-k of `probabilities` (ties to the lower index, like evaluation) and the uncertainty flag."""
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    top = [(int(i), labels[int(i)], float(probabilities[int(i)])) for i in order]
    return Decision(top, top[0][2] < min_confidence)

"""A running average of the weights (Polyak averaging): the model that evals, samples and
inspections use.

The optimizer's weights move with the noise of each batch; an exponential moving
average of them over the last ~1 / (1 - decay) steps cancels much of that noise,
as a lower learning rate would, without slowing training (the averaged copy never
feeds back into it). At nanoGPT's CPU setting the average reached the target
val loss 100-150 steps sooner on each of three seeds (docs/benchmarks.md).

Contract:
- `update` after every optimizer step. Early on the decay is warmed up as
  min(decay, (1 + step) / (10 + step)), so the first evals follow the fast-moving
  weights instead of the random start.
- `model` is a full Model (same shapes, tied weights kept tied), never trained.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from minigpt.model import Model


def warmed_decay(decay: float, step: int) -> float:
    """The decay used after optimizer step `step` (1 for the first step)."""
    return min(decay, (1 + step) / (10 + step))


class WeightAverage:
    """An exponential moving average of a model's weights, itself a Model."""

    def __init__(self, model: Model) -> None:
        """Start the average at the model's current weights."""
        self.model = copy.deepcopy(model).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, model: Model, decay: float, step: int) -> None:
        """Move the average towards the model's weights after optimizer step `step`."""
        averaged: list[torch.Tensor] = list(self.model.parameters())
        current = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(averaged, current, 1.0 - warmed_decay(decay, step))

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights, as a model's state_dict."""
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore averaged weights saved by state_dict()."""
        self.model.load_state_dict(state)

"""Which optimizer updates which weights, and at what learning rate.

`train.optimizer = "adamw"` is the lesson's choice: one AdamW for every weight.
`"muon"` hands the 2-D weight matrices inside the blocks (attention's qkv and
projection, the feed-forward's up and down) to `torch.optim.Muon` (updating
the matrices of one shape together), which orthogonalises their momentum before
each update; the embeddings (tied to the output layer), the LayerNorms, any bias
and the residual scalars (model.residual_scalars) stay with AdamW. Each has its own
peak learning rate (`learning_rate`, `muon_learning_rate`); the schedule scales both
alike. The residual scalars train at AdamW's rate, undecayed like every 1-D weight
(nanochat gives them rates of their own; here that is one rate fewer to tune).

Contract:
- `build_optimizers` returns the AdamW first, then Muon when asked for; each
  weight is in exactly one of them.
- `set_learning_rates` sets every group's rate for a point of the schedule given
  as a share of the peak, so a hot change of either peak applies at the next step.
- AdamW's decoupled weight decay (`weight_decay`) applies to its weight matrices
  only (the embedding, when Muon has the blocks'); Muon's matrices are not decayed.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any, overload

import torch

from minigpt.config import TrainConfig
from minigpt.model import Model

MUON_MOMENTUM = 0.95  # torch's default, the value Muon's authors use


@functools.cache
def native_bfloat16(device_type: str) -> bool:
    """Whether bfloat16 matrix products run on this kind of device's own instructions: on
    CUDA, and on a CPU with them (oneDNN's check). Elsewhere torch emulates them, some 30
    times slower than float32 (bench/muon_precision.py)."""
    if device_type == "cuda":
        return True
    if device_type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False


def orthogonalise(
    matrices: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float
) -> torch.Tensor:
    """Muon's Newton-Schulz iteration on a stack of same-shaped matrices (n, rows, cols):
    each one's singular values pushed towards 1. In bfloat16 as torch.optim.Muon does where
    that is native, else in float32, which is as exact and on such a CPU many times faster."""
    a, b, c = coefficients
    native = native_bfloat16(matrices.device.type)
    x = matrices.bfloat16() if native else matrices.float()
    tall = x.size(-2) > x.size(-1)
    x = x.mT if tall else x  # the Gram matrix is then the smaller of the two
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = torch.bmm(x, x.mT)
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.mT if tall else x


def muon_scale(shape: torch.Size) -> float:
    """torch.optim.Muon's own adjustment of the rate for a (rows, cols) matrix."""
    return math.sqrt(max(1.0, shape[0] / shape[1]))


class StackedMuon(torch.optim.Muon):
    """torch.optim.Muon with the matrices of one shape updated together: one batched
    Newton-Schulz iteration per shape (4 a step for the lesson's blocks) instead of one per
    matrix (16), with the same operations in the same order, so the weights come out bit
    for bit the same, in about half the time (bench/muon_step.py). Its hyperparameters,
    checks and state (a momentum_buffer per weight) are torch's; adjust_lr_fn must be left
    at its default."""

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every weight that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            shapes: dict[torch.Size, list[torch.Tensor]] = defaultdict(list)
            for p in group["params"]:
                if p.grad is not None:
                    shapes[p.shape].append(p)
            for shape, params in shapes.items():
                self._update(group, shape, params)
        return loss

    def _update(self, group: dict[str, Any], shape: torch.Size, params: list[torch.Tensor]) -> None:
        """torch's update for the matrices of one shape, the Newton-Schulz part as one stack."""
        momentum, lr = group["momentum"], group["lr"]
        grads = [p.grad for p in params if p.grad is not None]
        assert len(grads) == len(params), "only weights with a gradient are updated"
        for p in params:  # a zero buffer for a weight's first step only, not made anew each step
            if "momentum_buffer" not in self.state[p]:
                self.state[p]["momentum_buffer"] = torch.zeros_like(p)
        buffers = [self.state[p]["momentum_buffer"] for p in params]
        torch._foreach_lerp_(buffers, grads, 1 - momentum)  # in place
        # Nesterov's look-ahead per weight, then one stack: no stacked copy of the momenta.
        ahead = torch._foreach_lerp(grads, buffers, momentum) if group["nesterov"] else buffers
        update = torch.stack(ahead)
        ortho = orthogonalise(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
        if group["weight_decay"]:
            torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
        torch._foreach_add_(params, list(ortho.unbind(0)), alpha=-lr * muon_scale(shape))


def hidden_matrices(model: Model) -> list[torch.nn.Parameter]:
    """The 2-D weights inside the transformer blocks: what Muon is made for."""
    return [p for p in model.blocks.parameters() if p.dim() == 2 and p.requires_grad]


def build_optimizers(
    model: Model, train: TrainConfig, device: torch.device
) -> list[torch.optim.Optimizer]:
    """AdamW (and, for train.optimizer = "muon", Muon) over all the model's weights."""
    matrices = hidden_matrices(model) if train.optimizer == "muon" else []
    muon_owned = {id(p) for p in matrices}
    params = [p for p in model.parameters() if p.requires_grad and id(p) not in muon_owned]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": train.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # beta2 = 0.99 as nanoGPT uses for small character-level models: with few
    # tokens per step, a shorter second-moment memory trains faster. The fused
    # kernel (CPU and CUDA) updates 13.6M parameters in 6 ms where the default
    # took 49 ms on the development machine.
    adamw = torch.optim.AdamW(
        groups,
        lr=train.learning_rate,
        betas=(0.9, 0.99),
        fused=device.type in ("cpu", "cuda"),
    )
    if not matrices:
        return [adamw]
    muon = StackedMuon(
        matrices,
        lr=train.muon_learning_rate,
        weight_decay=0.0,  # reached the target loss sooner than 0.1 (docs/benchmarks.md)
        momentum=MUON_MOMENTUM,
    )
    return [adamw, muon]


def set_learning_rates(
    optimizers: list[torch.optim.Optimizer], train: TrainConfig, share: float
) -> None:
    """Every group at `share` of its optimizer's peak rate (and the current weight decay)."""
    for optimizer in optimizers:
        muon = isinstance(optimizer, torch.optim.Muon)
        peak = train.muon_learning_rate if muon else train.learning_rate
        for index, group in enumerate(optimizer.param_groups):
            group["lr"] = share * peak
            if not muon and index == 0:  # AdamW's first group holds its weight matrices
                group["weight_decay"] = train.weight_decay

"""The cross-entropy of a linear layer's logits, without holding all the logits at once.

With the lesson's full cl100k_base vocabulary a step's logits are 768 x 100,277
floats (about 300 MB). The plain path writes them, writes their log-softmax,
and reads both back for the gradient, which on a CPU costs as much time as the
matrix products themselves. Here the loss and both gradients are computed
chunk by chunk during the forward pass, so only one chunk's logits exist at a
time and they are used while still in cache; backward just scales the stored
gradients. The matrix products are the same three as in the plain path. (The
same idea as the fused linear cross-entropy of Liger-Kernel, 2024.)

Values and gradients equal F.cross_entropy(h @ weight.T, targets) up to float
rounding (tests/minigpt/test_model.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

CHUNK_ROWS = 256  # rows of logits at a time (256 x 100,277 floats is about 100 MB)


def _row_losses(
    logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each row's cross-entropy (chunk,), from logits (chunk, vocab) turned in place into
    their exps shifted by the row's peak, which are returned with their sums (chunk,)."""
    picked = logits.gather(1, target[:, None]).squeeze(1)  # (chunk,)
    peak = logits.amax(dim=1, keepdim=True)  # (chunk, 1)
    exps = logits.sub_(peak).exp_()  # in place: one exp per logit, not two
    sums = exps.sum(dim=1)  # (chunk,)
    return peak.squeeze(1) + sums.log() - picked, exps, sums


class _LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of h @ weight.T against targets; gradients made in forward."""

    @staticmethod
    def forward(
        ctx: Any, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, grads: bool
    ) -> torch.Tensor:
        n = h.size(0)
        grad_h = torch.empty_like(h) if grads and ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(weight) if grads and ctx.needs_input_grad[1] else None
        total = h.new_zeros(())
        for start in range(0, n, CHUNK_ROWS):
            rows = slice(start, start + CHUNK_ROWS)
            target = targets[rows]
            losses, exps, sums = _row_losses(h[rows] @ weight.T, target)
            total += losses.sum()
            if grad_h is None and grad_w is None:
                continue
            # d(mean loss)/d(logits) = (softmax - one_hot) / n, made in place of the exps.
            grad_logits = exps.mul_((1.0 / n) / sums[:, None])
            grad_logits[torch.arange(target.numel(), device=h.device), target] -= 1.0 / n
            if grad_h is not None:
                torch.mm(grad_logits, weight, out=grad_h[rows])
            if grad_w is not None:
                grad_w.addmm_(grad_logits.T, h[rows])
        ctx.save_for_backward(grad_h, grad_w)
        return total / n

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_h, grad_w = ctx.saved_tensors
        return (
            None if grad_h is None else grad_h * grad_loss,
            None if grad_w is None else grad_w * grad_loss,
            None,
            None,
        )


def _plain(h: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the chunked path does not apply: it serves float32 without autocast."""
    return (
        h.dtype != torch.float32
        or weight.dtype != torch.float32
        or torch.is_autocast_enabled(h.device.type)
    )


def linear_cross_entropy(
    h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of the logits h @ weight.T (h: (N, C), weight: (V, C), targets: (N,)).

    The chunked path serves float32 without autocast (the CPU case it was made for);
    anything else takes the plain path. With gradients off (an evaluation), the chunks
    make no gradients: ctx.needs_input_grad says only whether the inputs require them.
    """
    if _plain(h, weight):
        return F.cross_entropy(h @ weight.T, targets)
    apply: Callable[..., torch.Tensor] = _LinearCrossEntropy.apply  # untyped in torch
    return apply(h, weight, targets, torch.is_grad_enabled())


@torch.no_grad()
def token_cross_entropy(
    h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Each row's cross-entropy (N,) of the logits h @ weight.T, a chunk of logits at a time:
    the per-token losses an evaluation averages, without gradients."""
    if _plain(h, weight):
        return F.cross_entropy(h @ weight.T, targets, reduction="none")
    out = h.new_empty(h.size(0))
    for start in range(0, h.size(0), CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        out[rows] = _row_losses(h[rows] @ weight.T, targets[rows])[0]
    return out

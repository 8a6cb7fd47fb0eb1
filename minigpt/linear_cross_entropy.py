"""The cross-entropy of a linear layer's logits, without holding all the logits at once.

With the lesson's full cl100k_base vocabulary a step's logits are 768 x 100,277
floats (about 300 MB). The plain path writes them, writes their log-softmax,
and reads both back for the gradient, which on a CPU costs as much time as the
matrix products themselves. Here the loss and both gradients are computed
chunk by chunk during the forward pass, so only one chunk's logits exist at a
time and they are used while still in cache; backward just scales the stored
gradients. The matrix products are the same three as in the plain path. (The
same idea as the fused linear cross-entropy of Liger-Kernel, 2024.)

The logits may be soft-capped (model.logit_softcap: cap * tanh(z / cap), as Gemma 2
and the modded-nanogpt speedrun do). Every logit the model makes comes from
`capped_logits` here or from the chunks, which apply the cap and, for the gradient,
its slope themselves.

Values and gradients equal F.cross_entropy(capped_logits(h, weight, cap), targets) up
to float rounding (tests/minigpt/test_model.py and test_switches.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

CHUNK_ROWS = 256  # rows of logits at a time (256 x 100,277 floats is about 100 MB)


def softcap(logits: torch.Tensor, cap: float) -> torch.Tensor:
    """cap * tanh(logits / cap): logits squashed smoothly into (-cap, cap); cap 0 = off."""
    return cap * torch.tanh(logits / cap) if cap else logits


def capped_logits(h: torch.Tensor, weight: torch.Tensor, cap: float) -> torch.Tensor:
    """The output layer's logits (..., V) of vectors h (..., C) with weight (V, C), soft-capped."""
    return softcap(F.linear(h, weight), cap)


def _chunk_logits(
    h: torch.Tensor, weight: torch.Tensor, cap: float
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A chunk's capped logits (chunk, V), and tanh(raw / cap) (None without a cap), whose
    1 - tanh^2 is the cap's slope the gradient needs."""
    logits = h @ weight.T  # (chunk, V)
    if not cap:
        return logits, None
    squashed = logits.div_(cap).tanh_()  # in place: (chunk, V) in (-1, 1)
    return squashed * cap, squashed


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
        ctx: Any,
        h: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        cap: float,
        grads: bool,
    ) -> torch.Tensor:
        n = h.size(0)
        grad_h = torch.empty_like(h) if grads and ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(weight) if grads and ctx.needs_input_grad[1] else None
        total = h.new_zeros(())
        for start in range(0, n, CHUNK_ROWS):
            rows = slice(start, start + CHUNK_ROWS)
            target = targets[rows]
            logits, squashed = _chunk_logits(h[rows], weight, cap)
            losses, exps, sums = _row_losses(logits, target)
            total += losses.sum()
            if grad_h is None and grad_w is None:
                continue
            # d(mean loss)/d(logits) = (softmax - one_hot) / n, made in place of the exps.
            grad_logits = exps.mul_((1.0 / n) / sums[:, None])
            grad_logits[torch.arange(target.numel(), device=h.device), target] -= 1.0 / n
            if squashed is not None:  # back through the cap to h @ weight.T: times 1 - tanh^2
                grad_logits.mul_(squashed.square_().neg_().add_(1.0))
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
    h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, cap: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy of capped_logits(h, weight, cap) (h: (N, C), weight: (V, C),
    targets: (N,)).

    The chunked path serves float32 without autocast (the CPU case it was made for);
    anything else takes the plain path. With gradients off (an evaluation), the chunks
    make no gradients: ctx.needs_input_grad says only whether the inputs require them.
    """
    if _plain(h, weight):
        return F.cross_entropy(capped_logits(h, weight, cap), targets)
    apply: Callable[..., torch.Tensor] = _LinearCrossEntropy.apply  # untyped in torch
    return apply(h, weight, targets, cap, torch.is_grad_enabled())


@torch.no_grad()
def token_cross_entropy(
    h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, cap: float = 0.0
) -> torch.Tensor:
    """Each row's cross-entropy (N,) of capped_logits(h, weight, cap), a chunk of logits at
    a time: the per-token losses an evaluation averages, without gradients."""
    if _plain(h, weight):
        return F.cross_entropy(capped_logits(h, weight, cap), targets, reduction="none")
    out = h.new_empty(h.size(0))
    for start in range(0, h.size(0), CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        out[rows] = _row_losses(_chunk_logits(h[rows], weight, cap)[0], targets[rows])[0]
    return out

"""How generation picks the next token from the last position's logits.

The lesson's steps: divide the logits by the temperature, softmax, draw one token
(multinomial). Before the softmax, top-k keeps the k likeliest and top-p the nucleus
(the likeliest tokens whose probabilities first reach p); temperature 0 is greedy
(the argmax). `Model.stream` draws with `sample_next`; inspection (minigpt/inspection.py)
shows each step with the same filters, so its numbers are the ones generation draws from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_next(
    logits: torch.Tensor,
    temperature: float,
    top_k: int,
    top_p: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick the next token (B, 1) from last-position logits (B, vocab); also return the
    probability (B, 1) the token had in the filtered distribution it was drawn from
    (1.0 at temperature 0, which always takes the argmax)."""
    if temperature == 0:
        token = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
        return token, torch.ones(token.shape, dtype=torch.float32, device=token.device)
    logits = keep_top_p(keep_top_k(logits.float() / temperature, top_k), top_p)
    probs = F.softmax(logits, dim=-1)  # (B, vocab)
    token = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
    # Already computed for the draw: one gather, no sync, no extra forward.
    return token, probs.gather(-1, token)


def keep_top_k(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Logits (..., vocab) with all but the top_k largest set to -inf (0 = keep all)."""
    if top_k > 0 and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (..., 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return logits


def keep_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Logits (..., vocab) outside the nucleus (likeliest tokens first reaching top_p) at -inf."""
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        sorted_probs = F.softmax(sorted_logits, dim=-1)
        # Drop a token when the tokens ranked above it already cover top_p;
        # the most likely token always stays.
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs > top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    return logits

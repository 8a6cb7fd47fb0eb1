"""Rotary position embeddings (RoPE, Su et al. 2021): positions as rotations of q and k.

With `model.position = "rotary"` the model has no position table: each head's queries
and keys are rotated by angles that grow with their position, so the score q.k of two
tokens depends on how far apart they are, not on where they stand.

The convention is GPT-NeoX's, as transformers implements it (`rotate_half`), over the
whole head: dimension i is paired with i + hs/2 (the first half of a head's dimensions
with the second), and the pair's angle at position p is p * inv_freq[i mod hs/2], where
inv_freq = 1 / ROPE_BASE ** (arange(0, hs, 2) / hs). So a rotary model is
transformers' GPTNeoXForCausalLM with rotary_pct = 1.0 and rotary_emb_base = ROPE_BASE
as far as positions go; the tables are made in float32 and cast to q's dtype, as there.
"""

from __future__ import annotations

import torch

ROPE_BASE = 10000.0  # the base of the angles' frequencies (GPT-NeoX's rotary_emb_base)


def rotary_tables(positions: int, head_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (positions, head_size) of every position's angles, in float32."""
    assert head_size % 2 == 0, "rotary pairs a head's dimensions, so its size must be even"
    inv_freq = 1.0 / ROPE_BASE ** (
        torch.arange(0, head_size, 2, dtype=torch.int64).float() / head_size
    )  # (hs/2,)
    freqs = torch.outer(torch.arange(positions, dtype=torch.float32), inv_freq)  # (T, hs/2)
    angles = torch.cat([freqs, freqs], dim=-1)  # (T, hs): the two halves rotate together
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(..., hs) -> (..., hs): each pair (a, b) of the two halves as (-b, a)."""
    first, second = x.chunk(2, dim=-1)  # (..., hs/2) each
    return torch.cat([-second, first], dim=-1)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Queries or keys (B, nh, T, hs) rotated to their positions' angles (cos, sin: (T, hs))."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_half(x) * sin  # (B, nh, T, hs)

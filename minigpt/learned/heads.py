"""What each attention head does: a previous-token score, an induction score, its entropy.

- previous_token: the mean attention a position pays to the position just before
  it, over the probe text (1 for a head that always looks one token back).
- induction: on sequences of random tokens repeated once (r r; each r a quarter of the
  context long, so the copy is as far back as repeats in text often are), the mean attention
  that a token of the second copy pays to the token just after the same token's
  place in the first copy: the head that predicts "what came next last time".
  A head that attends evenly to what it can see scores about 1/(p+1) at position p
  (`induction_chance`); a working induction head scores near 1.
- entropy: the mean entropy, in bits, of a position's attention over the probe
  text (0: it looks at one token; log2(p+1): evenly at all it can see).

The random sequences come from a generator seeded the same at every eval, so every
eval measures the heads on the same tokens. Scores are [block][head].
"""

from __future__ import annotations

import torch

from minigpt.events import HeadRoles
from minigpt.model import Model

REPEATS = 8  # random sequences per eval
SEED = 20240  # the random sequences' own seed, the same at every eval


def attention(model: Model, x: torch.Tensor) -> torch.Tensor:
    """Every head's attention weights (blocks, B, nh, T, T) for token ids x (B, T), eval mode."""
    weights: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    try:
        model(x, attention=weights)
    finally:
        model.train(was_training)
    return torch.stack(weights).float()


def repeated_random(vocab: list[int], half: int, count: int) -> torch.Tensor:
    """count rows of `half` random tokens from vocab, each row followed by itself: (count, 2*half).

    Tokens do not repeat within a half while the vocabulary allows, so each token of
    the second copy has one earlier place to match.
    """
    generator = torch.Generator().manual_seed(SEED)
    pool = torch.tensor(vocab)
    rows = []
    for _ in range(count):
        if len(pool) >= half:
            picks = pool[torch.randperm(len(pool), generator=generator)[:half]]
        else:
            picks = pool[torch.randint(0, len(pool), (half,), generator=generator)]
        rows.append(torch.cat([picks, picks]))
    return torch.stack(rows)


def repeat_length(context: int, vocab: int) -> int:
    """How many random tokens are repeated: a quarter of the context, at most the vocabulary."""
    return max(1, min(context // 4, vocab))


def induction_chance(half: int) -> float:
    """The induction score of a head that attends evenly to every position it can see."""
    positions = range(half, 2 * half)  # the second copy's tokens
    return sum(1 / (p + 1) for p in positions) / half


@torch.no_grad()
def head_scores(
    model: Model, probe_attention: torch.Tensor | None, vocab: list[int]
) -> list[list[HeadRoles]]:
    """Every head's roles: previous-token and entropy from its attention over the probe's
    windows (blocks, W, nh, T, T; see probe.score_probe), induction on repeated tokens."""
    c = model.config
    previous = entropy = torch.zeros(c.num_blocks, c.num_heads)
    if probe_attention is not None and probe_attention.size(-1) > 1:
        att = probe_attention
        behind = att.diagonal(offset=-1, dim1=-2, dim2=-1)  # (blocks, W, nh, T-1)
        previous = behind.mean(dim=(1, 3))  # (blocks, nh)
        bits = -(att * torch.log2(att.clamp_min(1e-12))).sum(-1)  # (blocks, W, nh, T)
        entropy = bits[..., 1:].mean(dim=(1, 3))  # position 0 can only look at itself
    half = repeat_length(c.context_length, len(vocab))
    repeats = repeated_random(vocab, half, REPEATS)  # (R, 2*half)
    att = attention(model, repeats.to(next(model.parameters()).device)).cpu()
    j = torch.arange(half)
    after_match = att[..., half + j, j + 1]  # (blocks, R, nh, half)
    induction = after_match.mean(dim=(1, 3))  # (blocks, nh)
    return [
        [
            HeadRoles(float(previous[b, h]), float(induction[b, h]), float(entropy[b, h]))
            for h in range(c.num_heads)
        ]
        for b in range(c.num_blocks)
    ]

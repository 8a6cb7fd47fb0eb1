"""Training health: the figures an eval reports beyond its two losses.

Contract:
- `tokens_per_byte(tokenizer, ids)` is a split's tokens per UTF-8 byte of the text they
  spell, counted once from the ids (sampled evenly on corpora over SAMPLE_TOKENS tokens).
  Loss in nats per token / ln 2 x tokens per byte = bits per byte, a figure that compares
  runs across tokenizers (1.0 for the char tokenizer on ASCII text).
- `block_health(blocks, optimizers)` gives, per transformer block, the std of the last
  update (AdamW's or Muon's) of its weight matrices over the std of those weights
  (Karpathy's makemore diagnostic: near 1e-3 is healthy, far above means the learning
  rate is too high, far below that the block barely learns) and their L2 norm. The
  update is rebuilt from the optimizer's state, so training keeps no copies and pays
  nothing between evals.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from minigpt.optimizers import muon_scale, orthogonalise
from minigpt.tokenizer import Tokenizer

SAMPLE_TOKENS = 1 << 25  # ids counted per split at most (32M: a second or so)
CHUNK_TOKENS = 1 << 20  # ids counted at a time, so a mapped token file is never copied whole


def tokens_per_byte(tokenizer: Tokenizer, ids: torch.Tensor) -> float:
    """Tokens per byte of text in `ids` (1-D); evenly spaced chunks of a long split."""
    starts = range(0, len(ids), CHUNK_TOKENS)
    if len(starts) * CHUNK_TOKENS > SAMPLE_TOKENS:
        starts = starts[:: -(-len(starts) * CHUNK_TOKENS // SAMPLE_TOKENS)]
    counts = np.zeros(tokenizer.vocab_size, dtype=np.int64)  # (V,) occurrences of each id
    for start in starts:
        chunk = ids[start : start + CHUNK_TOKENS].numpy().astype(np.int64)
        counts += np.bincount(chunk, minlength=tokenizer.vocab_size)
    used = np.flatnonzero(counts)  # only these ids need their bytes looked up
    lengths = np.array([len(tokenizer.token_bytes(int(i))) for i in used], dtype=np.int64)
    text_bytes = int(counts[used] @ lengths)
    return int(counts.sum()) / max(1, text_bytes)


def bits_per_byte(loss: float, tokens_per_byte: float) -> float:
    """Loss in nats per token as bits per byte of text."""
    return loss / math.log(2) * tokens_per_byte


@torch.no_grad()
def block_health(
    blocks: torch.nn.ModuleList, optimizers: list[torch.optim.Optimizer]
) -> tuple[list[float], list[float]]:
    """(update ratio, weight norm) of each block's weight matrices; ratios are empty
    before the first step, when the optimizers hold no state yet."""
    ratios, norms = [], []
    for block in blocks:
        weights = [p for p in block.parameters() if p.dim() >= 2]
        flat = torch.cat([p.detach().float().flatten() for p in weights])  # (N,)
        norms.append(flat.norm().item())
        updates = [u for p in weights if (u := _last_update(p, optimizers)) is not None]
        if len(updates) == len(weights):
            update = torch.cat([u.flatten() for u in updates])
            ratios.append((update.std() / flat.std()).item())
    return ratios, norms


def _last_update(p: torch.Tensor, optimizers: list[torch.optim.Optimizer]) -> torch.Tensor | None:
    """The change the last step made to p, rebuilt from its optimizer's state (None before
    any): AdamW's from its two moments; Muon's from its momentum, orthogonalised (the
    Nesterov look-ahead's gradient is gone by then, so this leaves it out)."""
    owner = _owner(p, optimizers)
    if owner is None or not (state := owner[0].state.get(p)):
        return None
    group = owner[1]
    lr = group["lr"]
    if "momentum_buffer" in state:
        coefficients, steps, eps = group["ns_coefficients"], group["ns_steps"], group["eps"]
        ortho = orthogonalise(state["momentum_buffer"][None], coefficients, steps, eps)[0]
        step = lr * muon_scale(p.shape) * ortho.float()
    elif "exp_avg" in state:
        (beta1, beta2), eps = group["betas"], group["eps"]
        count = float(state["step"])
        m_hat = state["exp_avg"].float() / (1 - beta1**count)
        v_hat = state["exp_avg_sq"].float() / (1 - beta2**count)
        step = lr * m_hat / (v_hat.sqrt() + eps)
    else:
        return None
    # Decoupled weight decay: p_now = p_then * (1 - lr * wd) - step, solved for p_then.
    keep = 1 - lr * group["weight_decay"]
    now = p.detach().float()
    if abs(keep) < 1e-6:  # the decay wiped p_then out: it cannot be recovered
        return -step
    return now - (now + step) / keep


def _owner(
    p: torch.Tensor, optimizers: list[torch.optim.Optimizer]
) -> tuple[torch.optim.Optimizer, dict[str, Any]] | None:
    """The optimizer that updates p, and the parameter group p is in."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            if any(q is p for q in group["params"]):
                return optimizer, group
    return None

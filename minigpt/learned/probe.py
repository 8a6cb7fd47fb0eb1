"""The probe text: one fixed passage of the validation split, scored token by token.

The passage is chosen once, at a run's start, from the seed: it starts just after a
line break where there is one near the chosen place, so it reads from the start of
a line. At each eval every token but the first gets the loss the model gives it
(the lesson's cross-entropy at that position) and the model's top guesses there.

Windows of context_length tokens slide over the passage by half a window, and each
token is scored in the window where it has the most context: the first window
scores all its tokens, every later one only its second half. So a token always has
at least half a window of the passage before it, except near the passage's start.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from minigpt.events import LearnedEvent
from minigpt.model import Model
from minigpt.tokenizer import Tokenizer

PROBE_TOKENS = 1024  # the passage's length, at most ...
PROBE_WINDOWS = 16  # ... and at most this many context lengths, so a short context scores fast
LINE_SEARCH = 256  # how far past the chosen place to look for a line break
TOP_GUESSES = LearnedEvent.GUESSES


def choose_probe(val: torch.Tensor, tokenizer: Tokenizer, seed: int, context: int) -> list[int]:
    """The probe's token ids: a stretch of val (see PROBE_TOKENS) from a place the seed picks."""
    length = min(PROBE_TOKENS, PROBE_WINDOWS * context, len(val))
    if length < 2:
        return [int(i) for i in val.tolist()]
    generator = torch.Generator().manual_seed(seed)
    start = int(torch.randint(0, len(val) - length + 1, (1,), generator=generator))
    end = min(start + LINE_SEARCH, len(val) - length)
    for i in range(start, end):
        if b"\n" in tokenizer.token_bytes(int(val[i])):
            start = i + 1
            break
    return [int(i) for i in val[start : start + length].tolist()]


def windows(length: int, context: int) -> list[tuple[int, int, int]]:
    """(start, end, first) of each window over a passage of `length` tokens.

    A window feeds ids[start:end] (at most `context` of them) and predicts the targets
    start+1 .. end; it scores those from `first` on. Every target 1 .. length-1 is
    scored exactly once, by the first window and then the second half of each later one.
    """
    last = length - 1  # the last target
    if last < 1:
        return []
    context = max(2, context)
    spans = [(0, min(context, last), 1)]
    while spans[-1][1] < last:
        start = min(spans[-1][0] + context // 2, last - context)
        spans.append((start, start + context, spans[-1][1] + 1))
    return spans


@dataclass
class ProbeScore:
    """The probe at one eval: each token's loss (None for the first) and top guesses, and
    every head's attention over the probe's windows (blocks, W, nh, T, T), when asked for."""

    loss: list[float | None]
    guesses: list[list[tuple[int, float]]]  # (token id, probability), likeliest first
    attention: torch.Tensor | None = None


@torch.no_grad()
def score_probe(model: Model, ids: list[int], with_attention: bool = False) -> ProbeScore:
    """Every probe token's loss and the model's top guesses for it, in eval mode, in one
    forward pass over all the windows (which are all one length)."""
    loss: list[float | None] = [None] * len(ids)
    guesses: list[list[tuple[int, float]]] = [[] for _ in ids]
    spans = windows(len(ids), model.config.context_length)
    if not spans:
        return ProbeScore(loss, guesses)
    device = next(model.parameters()).device
    x = torch.tensor([ids[start:end] for start, end, _ in spans], device=device)  # (W, T)
    # Only the scored positions go through the output layer: about half of them, as the
    # windows overlap by half, and the output layer is most of the cost.
    scored = [
        (w, target) for w, (_, end, first) in enumerate(spans) for target in range(first, end + 1)
    ]
    window = torch.tensor([w for w, _ in scored], device=device)
    row = torch.tensor([target - spans[w][0] - 1 for w, target in scored], device=device)
    y = torch.tensor([ids[target] for _, target in scored], device=device)  # (N,)
    weights: list[torch.Tensor] | None = [] if with_attention else None
    was_training = model.training
    model.eval()
    try:
        h = model.final_hidden(x, attention=weights)[window, row]  # (N, C)
        log_probs = F.log_softmax(model.logits(h).float(), dim=-1)  # (N, vocab)
    finally:
        model.train(was_training)
    losses = (-log_probs.gather(1, y[:, None])).squeeze(1).tolist()  # (N,)
    top = torch.topk(log_probs, min(TOP_GUESSES, log_probs.size(-1)))
    top_ids, top_probs = top.indices.tolist(), top.values.exp().tolist()  # (N, k)
    for n, (_, target) in enumerate(scored):
        loss[target] = losses[n]
        guesses[target] = list(zip(top_ids[n], top_probs[n], strict=True))
    attention = None if weights is None else torch.stack(weights).float().cpu()
    return ProbeScore(loss, guesses, attention)

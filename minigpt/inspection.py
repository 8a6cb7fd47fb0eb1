"""Why the model says what it says: the odds of the next token, step by step.

The lesson's `generate` picks a token in four steps: take the logits of the
last position, divide them by the temperature, softmax, draw. `inspect_next`
runs those steps on a prompt and keeps what each one produced, using the very
filters `sample_next` uses (`keep_top_k`, `keep_top_p`), so the numbers are
the ones generation draws from.

Contract:
- The model is put in eval mode for the forward pass (and restored), nothing
  is learned and no random number is drawn; callers inspecting a training
  model pass a copy of its weights.
- A prompt longer than context_length is cropped to its last context_length
  tokens (`cropped` says how many went); `position` indexes the tokens kept.
- Each stage's full distribution sums to 1; `candidates` are its `top` rows,
  ordered by the raw softmax, likeliest first. Temperature 0 is greedy: every
  stage puts all its mass on the raw argmax, as `sample_next` does.
- `lens` is the logit lens: each block's own likeliest next tokens at `position`,
  its residual stream read through the final layer norm and the output layer as
  the last block's is; the last block's lens is the raw softmax of the logits.
- With attention=True, the weights of every block and head come from the
  model's explicit attention path: [block][head][query][key], causal (zero
  above the diagonal) with rows summing to 1.
- Bad input (an empty prompt, text a char vocabulary lacks, settings out of
  range) raises a MiniGPTError; the settings are checked by [sample]'s own rules
  (minigpt.config), as generate's are. Nothing here imports a UI library.
"""

from __future__ import annotations

import math
import unicodedata

import torch
import torch.nn.functional as F

from minigpt.config import Config, SampleConfig, apply_values
from minigpt.errors import ConfigError, TokenizerError
from minigpt.events import Candidate, InspectionEvent, LensGuess
from minigpt.model import Model
from minigpt.next_token import keep_top_k, keep_top_p
from minigpt.tokenizer import Tokenizer

LENS_TOP = 5  # each block's likeliest tokens in the logit lens

# Characters a terminal would show as nothing, or move the cursor for.
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def readable_token(data: bytes) -> str:
    """A token's bytes as visible text: "␣" for a space, "↵" for a newline, "<0xE4>" for a
    byte that is not (a whole) UTF-8 character, "<U+200B>" for other invisible characters."""
    text = data.decode("utf-8", errors="surrogateescape")
    return "".join(_visible(c) for c in text)


def _visible(c: str) -> str:
    """One decoded character (or escaped byte) as something a terminal shows."""
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's stand-in for an undecodable byte
        return f"<0x{code - 0xDC00:02X}>"
    if c in VISIBLE:
        return VISIBLE[c]
    if unicodedata.category(c)[0] in "CZ":  # control, format, separator: invisible
        return f"<0x{code:02X}>" if code < 0x80 else f"<U+{code:04X}>"
    return c


def entropy_bits(probs: torch.Tensor) -> float:
    """Entropy in bits of a distribution (vocab,); zero-probability tokens add nothing."""
    return float(torch.special.entr(probs).sum()) / math.log(2)


def stage_probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """The distributions (4, vocab) of generate's steps for one position's logits (vocab,):
    raw softmax, after temperature, after top-k, after top-p (what sample_next draws from)."""
    logits = logits.float()
    raw = F.softmax(logits, dim=-1)  # (vocab,)
    if temperature == 0:  # greedy: sample_next takes the argmax, whatever top_k and top_p say
        greedy = F.one_hot(logits.argmax(), logits.size(-1)).float()  # (vocab,)
        return torch.stack([raw, greedy, greedy, greedy])
    scaled = logits / temperature
    after_k = keep_top_k(scaled, top_k)
    after_p = keep_top_p(after_k, top_p)
    return torch.stack([raw, *(F.softmax(s, dim=-1) for s in (scaled, after_k, after_p))])


def _checked(temperature: float, top_k: int, top_p: float) -> SampleConfig:
    """The settings as [sample] holds them, by the config's own rules; ConfigError otherwise."""
    values = {"sample.temperature": temperature, "sample.top_k": top_k, "sample.top_p": top_p}
    return apply_values(Config(), values).sample


@torch.no_grad()
def inspect_next(
    model: Model,
    tokenizer: Tokenizer,
    prompt: str,
    *,
    step: int = 0,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    position: int | None = None,
    top: int = 15,
    attention: bool = False,
) -> InspectionEvent:
    """The next-token odds after the prompt's token at `position` (default: the last; negative
    counts from the end), at each step of generate, and with attention=True every head's weights."""
    settings = _checked(temperature, top_k, top_p)
    temperature, top_k, top_p = settings.temperature, settings.top_k, settings.top_p
    if top < 1:
        raise ConfigError(f"top must be >= 1 (candidates to show), got {top}")
    ids = tokenizer.encode(prompt)
    if not ids:
        raise TokenizerError("the prompt is empty; give it at least one character")
    cropped = max(0, len(ids) - model.config.context_length)
    ids = ids[cropped:]
    T = len(ids)
    if position is None:
        position = T - 1
    if not -T <= position < T:
        raise ConfigError(f"position {position} is outside the prompt's {T} tokens (0..{T - 1})")
    position %= T
    x = torch.tensor([ids], dtype=torch.long, device=next(model.parameters()).device)  # (1, T)
    weights: list[torch.Tensor] | None = [] if attention else None
    stream: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    try:
        logits, _ = model(x, attention=weights, residuals=stream)  # (1, T, vocab)
    finally:
        model.train(was_training)
    probs = stage_probs(logits[0, position], temperature, top_k, top_p)  # (4, vocab)
    order = torch.topk(probs[0], min(top, probs.size(-1))).indices  # (top,)
    rows = probs[:, order].T.tolist()  # (top, 4)
    names = [readable_token(tokenizer.token_bytes(i)) for i in ids]
    following = position + 1 < T
    att = None if weights is None else torch.cat(weights).float()  # (blocks, nh, T, T)
    return InspectionEvent(
        step=step,
        prompt_tokens=names,
        prompt_ids=ids,
        position=position,
        cropped=cropped,
        next_token=names[position + 1] if following else None,
        next_id=ids[position + 1] if following else None,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        entropy_bits=entropy_bits(probs[1]),
        entropy_bits_raw=entropy_bits(probs[0]),
        candidates=[
            Candidate(readable_token(tokenizer.token_bytes(i)), i, *row)
            for i, row in zip(order.tolist(), rows, strict=True)
        ],
        attention=None if att is None else att.tolist(),
        attention_mean=None if att is None else att.mean(dim=1).tolist(),
        lens=logit_lens(model, tokenizer, stream, position, LENS_TOP),
    )


def lens_probs(model: Model, stream: list[torch.Tensor], position: int) -> torch.Tensor:
    """Each block's next-token probabilities (blocks, vocab) at `position`, read off the
    residual stream it leaves (`Model.forward`'s `residuals`, each (1, T, C)) the way the
    output layer reads the last one: through the final layer norm."""
    h = torch.stack([s[0, position] for s in stream])  # (blocks, C)
    return F.softmax(model.logits(model.ln_final(h)).float(), dim=-1)  # (blocks, vocab)


def logit_lens(
    model: Model, tokenizer: Tokenizer, stream: list[torch.Tensor], position: int, top: int
) -> list[list[LensGuess]]:
    """Each block's `top` likeliest next tokens at `position` (see lens_probs)."""
    probs = lens_probs(model, stream, position)  # (blocks, vocab)
    best = torch.topk(probs, min(top, probs.size(-1)))
    return [
        [
            LensGuess(readable_token(tokenizer.token_bytes(i)), i, p)
            for i, p in zip(ids, ps, strict=True)
        ]
        for ids, ps in zip(best.indices.tolist(), best.values.tolist(), strict=True)
    ]

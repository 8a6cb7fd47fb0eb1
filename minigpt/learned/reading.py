"""Reading learned records for people: shades, changes, the tokens that moved, histories.

The `minigpt learned` command and the dashboard's Learned view show the same things
the same way, from the records a run keeps (minigpt/rundir/learned.py). Torch-free.

- A probe token's surprise is its loss over the loss of an even guess among the whole
  vocabulary (ln vocab_size): 0 is certain, 1 is no better than guessing blindly.
- A token's change since an earlier eval is its loss now minus its loss then:
  negative got easier, positive got harder.
- Every value in a record may be missing or None; each function here passes such
  values over (or gives None for them) instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from minigpt.events import HeadRoles, LearnedEvent

BLOCKS = " ▁▂▃▄▅▆▇█"  # a value from 0 to 1 as one of eight heights (and blank for none)


@dataclass
class Probe:
    """The probe passage of a run: its tokens as readable text, and the run's vocabulary."""

    text: list[str]  # one readable token each ("␣" a space, "↵" a newline)
    vocab: list[str]  # every token id's readable text

    @classmethod
    def of(cls, kept: dict[str, Any] | None) -> Probe | None:
        """A run's learned/probe.json as read (None, or odd values, give None or blanks)."""
        if not isinstance(kept, dict):
            return None
        text, vocab = kept.get("text"), kept.get("vocab")
        if not isinstance(text, list) or not isinstance(vocab, list):
            return None
        return cls([t if isinstance(t, str) else "?" for t in text], [str(v) for v in vocab])

    def token(self, token_id: int | None) -> str:
        """The readable text of a token id ("?" for one the vocabulary lacks)."""
        if token_id is None or not 0 <= token_id < len(self.vocab):
            return "?"
        return self.vocab[token_id]


def surprise(loss: float | None, vocab_size: int) -> float | None:
    """loss as a share of an even guess's loss, within 0..1 (None for no loss)."""
    if loss is None or not math.isfinite(loss) or vocab_size < 2:
        return None
    return min(1.0, max(0.0, loss / math.log(vocab_size)))


def change_share(change: float | None, vocab_size: int) -> float | None:
    """A change of loss as a share of a blind guess's loss, within -1..1 (None for none)."""
    if change is None or not math.isfinite(change) or vocab_size < 2:
        return None
    return min(1.0, max(-1.0, change / math.log(vocab_size)))


def block(fraction: float | None) -> str:
    """A fraction 0..1 as a block of that height; a blank for None."""
    if fraction is None or not math.isfinite(fraction):
        return " "
    return BLOCKS[1 + min(7, max(0, int(fraction * 8)))]


def sparkline(
    values: Sequence[float | None], low: float | None = None, high: float | None = None
) -> str:
    """values as block heights, from low to high (default: their own least and greatest)."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return " " * len(values)
    low = min(known) if low is None else low
    high = max(known) if high is None else high
    span = high - low or 1.0
    return "".join(block(None if v is None else (v - low) / span) for v in values)


def changes(now: LearnedEvent, then: LearnedEvent) -> list[float | None]:
    """Each probe token's loss now minus then (None where either is missing)."""
    return [
        None if a is None or b is None else a - b
        for a, b in zip(now.probe_loss, then.probe_loss, strict=False)
    ]


@dataclass
class Moved:
    """A probe token whose loss changed: where it is, what it is, by how much."""

    index: int
    text: str
    change: float


def most_moved(text: Sequence[str], change: Sequence[float | None], count: int) -> list[Moved]:
    """The count tokens whose loss changed most, either way, largest change first."""
    moved = [
        Moved(i, text[i] if i < len(text) else "?", c)
        for i, c in enumerate(change)
        if c is not None and math.isfinite(c)
    ]
    return sorted(moved, key=lambda m: -abs(m.change))[:count]


def guesses(record: LearnedEvent, index: int) -> list[tuple[int, float]]:
    """The model's top guesses (id, prob) for the probe token at index, likeliest first."""
    k = LearnedEvent.GUESSES
    ids = record.guess_ids[index * k : (index + 1) * k]
    probs = record.guess_probs[index * k : (index + 1) * k]
    return [(i, p) for i, p in zip(ids, probs, strict=False) if i is not None and p is not None]


def head_scores(record: LearnedEvent) -> list[tuple[int, int, HeadRoles]]:
    """(block, head, roles) of every head, in order."""
    return [(b, h, roles) for b, row in enumerate(record.heads) for h, roles in enumerate(row)]


def passage_lines(text: Sequence[str], width: int) -> list[list[int]]:
    """The probe's token indices laid out in lines at most `width` cells wide: a token
    ending in a newline ends its line, and a line too long wraps before a token."""
    lines: list[list[int]] = [[]]
    used = 0
    for i, token in enumerate(text):
        shown = len(shown_text(token))
        if used and used + shown > width:
            lines.append([])
            used = 0
        lines[-1].append(i)
        used += shown
        if token.endswith("↵"):
            lines.append([])
            used = 0
    return [line for line in lines if line] or [[]]


def shown_text(token: str) -> str:
    """A readable token as it reads inside a passage: spaces as spaces, no newline marks."""
    return token.replace("␣", " ").replace("↵", "").replace("⇥", "    ")

"""An InspectionEvent as `minigpt inspect` prints it: one JSON object, or text for people.

The text is a table of candidates with a bar and a percentage for each of
generate's steps (raw softmax, temperature, top-k, top-p), the entropy, and
optionally one attention matrix (one block's head, or the mean of its heads)
drawn in shades, rows labelled with the prompt's tokens. Plain characters
only: the engine never imports a UI library.
"""

from __future__ import annotations

from typing import Any

from minigpt.display import probability_bar, token_label
from minigpt.errors import ConfigError
from minigpt.events import InspectionEvent

BAR_WIDTH = 10  # characters of a full (100%) bar
SHADES = "·░▒▓█"  # attention weight 0..1 in five steps
LABEL_WIDTH = 8  # terminal cells of a token shown as a label


def parse_head(text: str, blocks: int, heads: int) -> tuple[int, int | None]:
    """ "BLOCK:HEAD" or "BLOCK:mean" as (block, head), head None for the mean; ConfigError
    naming the valid ranges otherwise."""
    block, _, head = text.partition(":")
    usage = f"expected BLOCK:HEAD or BLOCK:mean with BLOCK 0..{blocks - 1} and HEAD 0..{heads - 1}"
    try:
        b = int(block)
        h = None if head == "mean" else int(head)
    except ValueError:
        raise ConfigError(f"--attention {text!r}: {usage}") from None
    if not 0 <= b < blocks or (h is not None and not 0 <= h < heads):
        raise ConfigError(f"--attention {text!r}: {usage}")
    return b, h


def attention_matrix(result: InspectionEvent, block: int, head: int | None) -> list[list[float]]:
    """One block's attention weights [query][key]: one head's, or their mean (head None)."""
    assert result.attention is not None and result.attention_mean is not None, "no attention"
    return result.attention_mean[block] if head is None else result.attention[block][head]


def inspection_json(result: InspectionEvent, head: tuple[int, int | None] | None) -> dict[str, Any]:
    """The JSON object `minigpt inspect --json` prints, with the (block, head) asked for."""
    attention = None
    if head is not None:
        block, h = head
        weights = attention_matrix(result, block, h)
        attention = {"block": block, "head": "mean" if h is None else h, "weights": weights}
    return {
        "step": result.step,
        "prompt_tokens": result.prompt_tokens,
        "prompt_ids": result.prompt_ids,
        "position": result.position,
        "cropped": result.cropped,
        "next_token": result.next_token,
        "next_id": result.next_id,
        "settings": {k: getattr(result, k) for k in ("temperature", "top_k", "top_p")},
        "entropy_bits": result.entropy_bits,
        "entropy_bits_raw": result.entropy_bits_raw,
        "candidates": [vars(c) for c in result.candidates],
        "attention": attention,
    }


def inspection_text(result: InspectionEvent, head: tuple[int, int | None] | None) -> str:
    """The candidates table, the entropy and, for a (block, head), its attention matrix."""
    r = result
    position = len(r.prompt_ids) - 1 if r.position is None else r.position
    shown = "".join(r.prompt_tokens[: position + 1])
    lines = [
        f"step {r.step} | next token after {position + 1} of {len(r.prompt_ids)} prompt tokens"
        + (f" ({r.cropped} cropped to fit the context)" if r.cropped else ""),
        f"  {shown}",
        f"entropy {r.entropy_bits:.2f} bits at temperature {r.temperature:g} "
        f"(raw softmax {r.entropy_bits_raw:.2f} bits)",
        "",
    ]
    stages = ["softmax", f"temperature {r.temperature:g}", f"top_k {r.top_k}", f"top_p {r.top_p:g}"]
    cell = BAR_WIDTH + 7
    lines.append(f"{'token':<{LABEL_WIDTH}} {'id':>6}  " + " ".join(s.ljust(cell) for s in stages))
    for c in r.candidates:
        cells = [
            probability_bar(p, BAR_WIDTH)
            for p in (c.prob, c.prob_temperature, c.prob_top_k, c.prob_top_p)
        ]
        drawn = "  ◀ next in the prompt" if c.id == r.next_id else ""
        lines.append(f"{token_label(c.token, LABEL_WIDTH)} {c.id:>6}  " + " ".join(cells) + drawn)
    if head is not None:
        lines += ["", *_matrix_lines(r, *head)]
    return "\n".join(lines)


def _matrix_lines(result: InspectionEvent, block: int, head: int | None) -> list[str]:
    """One attention matrix in shades: a row per query token, a column per key token."""
    weights = attention_matrix(result, block, head)
    which = "mean of heads" if head is None else f"head {head}"
    lines = [
        f"attention, block {block} {which}: row = token attending, column = token attended to",
        f"{' '.join(SHADES)} = under 20/40/60/80/100%; each row's largest weight at its right",
        " " * (LABEL_WIDTH + 5) + "".join(str(k // 10 % 10) for k in range(len(weights))),
        " " * (LABEL_WIDTH + 5) + "".join(str(k % 10) for k in range(len(weights))),
    ]
    for q, row in enumerate(weights):
        shades = "".join(SHADES[min(4, int(w * 5))] for w in row[: q + 1])  # causal: keys <= q
        k = max(range(len(row)), key=row.__getitem__)
        peak = f"{row[k]:.0%} on {result.prompt_tokens[k]} ({k})"
        name = token_label(result.prompt_tokens[q], LABEL_WIDTH)
        lines.append(f"{q:>3} {name} " + shades.ljust(len(row)) + f"  {peak}")
    return lines

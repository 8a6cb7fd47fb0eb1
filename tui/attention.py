"""The attention heatmap: which earlier tokens each token of the prompt looks at.

One block's head, or the mean of its heads, as a matrix: a query row per token
of the prompt, a key column per token, shaded from the theme's surface (no
weight) to its accent (all of it); causal, so above the diagonal is blank. Two
query rows share a terminal line, the upper in the top half of each cell and the
lower in the bottom half, so a cell is about square and a 24-token prompt fits
an 80x24 terminal; longer prompts scroll. The weights come as JSON from the
engine and are drawn as they are: a missing, ragged or non-finite weight is a
blank cell, not an error.
"""

from __future__ import annotations

import math
from typing import Any

from rich.cells import cell_len
from rich.color import Color as RichColor
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import ScrollableContainer
from textual.widgets import Static

from minigpt.display import number, token_label
from minigpt.events import InspectionEvent

LEVELS = 8  # shades from no weight to all of it
LABEL_WIDTH = 4  # cells of a token shown as a row label


def weight(matrix: Any, query: int, key: int) -> float | None:
    """matrix[query][key] as a finite float, or None wherever the data has none."""
    try:
        value = float(matrix[query][key])
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return value if math.isfinite(value) else None


def level(value: float) -> int:
    """A weight's shade, 0 (none) to LEVELS - 1 (all of it)."""
    return min(LEVELS - 1, int(max(0.0, min(1.0, value)) * LEVELS))


def size(value: Any) -> int:
    """How many entries a list has; 0 for anything else (None, a number, a dict)."""
    return len(value) if isinstance(value, list) else 0


def entry(items: Any, index: int) -> Any:
    """items[index], or None where there is none (items None, too short, or no list)."""
    try:
        return items[index]
    except (TypeError, IndexError, KeyError):
        return None


def initial(token: str) -> str:
    """A token's first character as a one-cell column label ("·" where it is wide or none)."""
    return token[:1] if token and cell_len(token[:1]) == 1 else "·"


class AttentionMap(ScrollableContainer, can_focus=False):
    """One block's head (or the mean of its heads) as a shaded query x key matrix."""

    def __init__(self, **kwargs: Any) -> None:
        """Start at block 0, head 0, with nothing to draw."""
        super().__init__(**kwargs)
        self.cells = Static(id="attention-cells")
        self.block = 0
        self.head = 0
        self.mean = False
        self.shown: InspectionEvent | None = None

    def compose(self) -> ComposeResult:
        """The matrix, in a container that scrolls both ways."""
        yield self.cells

    def on_mount(self) -> None:
        """Redraw in a new theme's colours."""
        self.watch(self.app, "theme", lambda _: self.draw(), init=False)

    def blocks(self) -> int:
        """Blocks in the shown answer's attention (0 when it has none)."""
        event = self.shown
        return 0 if event is None else size(event.attention) or size(event.attention_mean)

    def heads(self) -> int:
        """Heads in the current block (0 when the answer has none)."""
        attention = None if self.shown is None else self.shown.attention
        if not isinstance(attention, list) or not 0 <= self.block < len(attention):
            return 0
        return size(attention[self.block])

    def show(self, event: InspectionEvent) -> None:
        """Draw an answer's weights at its position."""
        self.shown = event
        self.draw()

    def move_block(self, offset: int) -> None:
        """An earlier or later block, wrapping around."""
        self.block = (self.block + offset) % max(1, self.blocks())
        self.draw()

    def move_head(self, offset: int) -> None:
        """An earlier or later head of the block (leaving the mean), wrapping around."""
        self.head = (self.head + offset) % max(1, self.heads())
        self.mean = False
        self.draw()

    def toggle_mean(self) -> None:
        """The mean over the block's heads, or back to one head."""
        self.mean = not self.mean
        self.draw()

    def matrix(self) -> Any:
        """The [query][key] weights of the current block and head (or mean); None if missing."""
        event = self.shown
        if event is None:
            return None
        if self.mean:
            return entry(event.attention_mean, self.block)
        return entry(entry(event.attention, self.block), self.head)

    def shades(self) -> list[Style]:
        """A style per level: the theme's surface blended towards its accent."""
        variables = self.app.get_css_variables()
        low, high = Color.parse(variables["surface"]), Color.parse(variables["accent"])
        return [
            Style(color=RichColor.from_rgb(*low.blend(high, (n + 1) / LEVELS).rgb))
            for n in range(LEVELS)
        ]

    def draw(self) -> None:
        """Redraw the title and the matrix for the current block, head and position."""
        event = self.shown
        if event is None:
            return
        self.block %= max(1, self.blocks())
        self.head %= max(1, self.heads())
        which = "mean of heads" if self.mean else f"head {self.head} of {self.heads()}"
        where = f"block {self.block} of {self.blocks()} · {which}"
        row = number(event.position, "d")
        self.border_title = f"{where} · query row {row} attends to columns"
        matrix = self.matrix()
        if matrix is None:
            self.cells.update(Text("No attention weights in this answer (yet).", style="dim"))
            return
        self.cells.update(heatmap(matrix, event.prompt_tokens, event.position, self.shades()))
        line = (event.position or 0) // 2 + 1
        self.call_after_refresh(
            self.scroll_to, y=max(0, line - self.size.height // 2), animate=False
        )


def heatmap(matrix: Any, tokens: list[str], position: int | None, shades: list[Style]) -> Text:
    """The matrix in half blocks, two query rows a line, a column per key, labelled with
    the tokens; the row at `position` marked with where most of its weight goes."""
    count = len(tokens)
    pad = " " * (LABEL_WIDTH - 1)
    axis = Text(f"{pad}▀{pad} ▄ ", style="dim")  # which label is which half of a cell
    for key, token in enumerate(tokens):
        axis.append(initial(token), style="reverse" if key == position else "")
    lines = [axis]
    for upper in range(0, count, 2):
        lower = upper + 1
        line = Text()
        for query in (upper, lower):
            token = token_label(tokens[query] if query < count else "", LABEL_WIDTH, ">")
            line.append(token, style="reverse" if query == position else "bold").append(" ")
        for key in range(count):
            top, bottom = _shade(matrix, upper, key, shades), _shade(matrix, lower, key, shades)
            if lower >= count:
                bottom = None
            if top is not None:
                line.append("▀", style=top + Style(bgcolor=bottom.color if bottom else None))
            else:
                line.append("▄" if bottom is not None else " ", style=bottom or "")
        if position in (upper, lower):
            line.append_text(_peak(matrix, tokens, position))
        lines.append(line)
    return Text("\n").join(lines)


def _shade(matrix: Any, query: int, key: int, shades: list[Style]) -> Style | None:
    """The style of one cell; None above the diagonal or where the weight is missing."""
    if key > query:
        return None
    value = weight(matrix, query, key)
    return None if value is None else shades[level(value)]


def _peak(matrix: Any, tokens: list[str], query: int) -> Text:
    """Where most of one row's weight goes, as " ◀ row 6 t: 62% on c (3)"."""
    weights = [(weight(matrix, query, key), key) for key in range(query + 1)]
    known = [(value, key) for value, key in weights if value is not None]
    if not known:
        return Text(f" ◀ row {query}: no weights", style="dim")
    value, key = max(known)
    return Text(f" ◀ row {query} {tokens[query]}: {value:.0%} on {tokens[key]} ({key})")

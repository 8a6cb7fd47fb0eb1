"""The probe text, each token shaded by how surprised the model was by it.

A token's shade is its surprise (its loss over a blind guess's, minigpt/learned/reading.py):
unshaded where the model was sure, hot where it had no idea. With the change on, a token
is green for the loss it lost since the earlier eval and red for the loss it gained. The
cursor token is shown reversed; the pane says what the model guessed there. Moving the
mouse over a token moves the cursor to it.
"""

from __future__ import annotations

import math
from typing import Any

from rich.style import Style
from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import Static

from minigpt.learned.reading import passage_lines, shown_text

# From sure to blind, eight shades: no background, then a ramp from deep blue to hot red.
SURPRISE = [None, "#1f2a44", "#2f3f7a", "#5b3f8f", "#8a3d87", "#b43c6e", "#d8433f", "#f0602a"]
EASIER = ["#16351f", "#1d5a2e", "#22803b", "#2aa84a"]  # a little, then much easier
HARDER = ["#3d1a1a", "#6b2222", "#9c2a2a", "#cc3333"]


def shade(value: float | None, change: bool) -> Style:
    """The style of a token with this surprise (0..1), or this change (-1..1) when change."""
    if value is None or not math.isfinite(value):
        return Style(dim=True)
    if change:
        ramp = EASIER if value < 0 else HARDER
        level = min(len(ramp) - 1, int(abs(value) * 2 * len(ramp)))
        return Style(bgcolor=ramp[level]) if abs(value) > 0.02 else Style()
    colour = SURPRISE[min(len(SURPRISE) - 1, int(value * len(SURPRISE)))]
    return Style(bgcolor=colour) if colour else Style()


class ProbeText(Static):
    """The passage, shaded token by token, with a cursor."""

    class Pointed(Message):
        """The mouse is over the token at index."""

        def __init__(self, index: int) -> None:
            """Which token."""
            super().__init__()
            self.index = index

    def __init__(self, **kwargs: Any) -> None:
        """Nothing to show yet."""
        super().__init__(**kwargs)
        self.tokens: list[str] = []
        self.values: list[float | None] = []
        self.change = False
        self.cursor = 0
        self.lines: list[list[int]] = []

    def show(
        self, tokens: list[str], values: list[float | None], change: bool, cursor: int
    ) -> None:
        """Shade tokens by values (surprises, or changes when change), cursor reversed."""
        self.tokens, self.values, self.change, self.cursor = tokens, values, change, cursor
        self.lines = passage_lines(tokens, max(20, self.size.width or 78))
        text = Text(no_wrap=True)
        for number, line in enumerate(self.lines):
            if number:
                text.append("\n")
            for i in line:
                value = values[i] if i < len(values) else None
                style = shade(value, change)
                if i == cursor:
                    style += Style(reverse=True, bold=True)
                text.append(shown_text(tokens[i]) or " ", style)
        self.update(text)

    def on_resize(self) -> None:
        """A new width lays the lines out anew."""
        if self.tokens:
            self.show(self.tokens, self.values, self.change, self.cursor)

    def token_at(self, x: int, y: int) -> int | None:
        """The index of the token drawn at cell (x, y), if any."""
        if not 0 <= y < len(self.lines):
            return None
        used = 0
        for i in self.lines[y]:
            used += len(shown_text(self.tokens[i]) or " ")
            if x < used:
                return i
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        """Point at the token under the mouse."""
        index = self.token_at(event.x, event.y)
        if index is not None and index != self.cursor:
            self.post_message(self.Pointed(index))

    def line_of(self, index: int) -> int:
        """The line the token at index is drawn on."""
        for number, line in enumerate(self.lines):
            if line and line[0] <= index <= line[-1]:
                return number
        return 0

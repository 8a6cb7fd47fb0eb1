"""The heads' roles as a table: each score now, and the induction score across evals.

One row per block and head. The previous-token and induction scores run from 0 to 1
(an induction head copies what followed an earlier copy of the current token; a head
attending evenly scores about 1/position); entropy is in bits. The last column draws
each head's induction score over the evals so far, so the moment a head starts
copying shows as a step in its line.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from minigpt.display import number
from minigpt.events import HeadRoles
from minigpt.learned.reading import sparkline

STRONG = 0.5  # a score this high is shown bold: the head does that job


def score(value: float | None) -> Text:
    """A 0..1 score, bold when the head does that job."""
    return Text(number(value, ".2f"), style="bold" if value is not None and value >= STRONG else "")


class HeadTable(DataTable[Any]):
    """Every head's previous-token, induction and entropy scores, and its induction history."""

    def on_mount(self) -> None:
        """The columns."""
        self.cursor_type = "row"
        self.add_columns("head", "prev", "induct", "entropy", "induction over evals")

    def show(
        self, heads: list[list[HeadRoles]], history: dict[tuple[int, int], list[float | None]]
    ) -> None:
        """One row per head of heads ([block][head]); history: each head's induction scores."""
        row = self.cursor_row
        self.clear()
        for b, block in enumerate(heads):
            for h, roles in enumerate(block):
                self.add_row(
                    f"{b}.{h}",
                    score(roles.previous_token),
                    score(roles.induction),
                    number(roles.entropy, ".2f"),
                    sparkline(history.get((b, h), []), low=0.0, high=1.0),
                )
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1))

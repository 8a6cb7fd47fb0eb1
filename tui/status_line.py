"""A pane's status line: the outcome of the last thing done there, hidden while empty."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static


class StatusLine(Static):
    """One short message under a pane; errors show in the error colour."""

    def __init__(self, **kwargs: Any) -> None:
        """Plain text: messages quote user input, which may hold [brackets]."""
        super().__init__(markup=False, **kwargs)

    def say(self, text: str, error: bool = False) -> None:
        """Show text (an empty text hides the line)."""
        self.update(text)
        self.set_class(error, "-error")
        self.set_class(bool(text), "-shown")

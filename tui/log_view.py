"""The Log tab: what happened, one line each, kept whole for the tests and the screen."""

from __future__ import annotations

from typing import Any

from textual.widgets import RichLog

from minigpt.events import UnknownEvent


class LogView(RichLog):
    """Lines of plain text (they quote engine output, which may hold [brackets])."""

    def __init__(self, **kwargs: Any) -> None:
        """Empty; wrapped, no markup."""
        super().__init__(wrap=True, markup=False, **kwargs)
        self.lines_written: list[str] = []
        self.unknown_events: set[str] = set()  # names already logged once

    def add(self, text: str) -> None:
        """Add a line."""
        self.lines_written.append(text)
        self.write(text)

    def add_unknown(self, event: UnknownEvent) -> None:
        """An event this dashboard does not know: logged once per name."""
        if event.event not in self.unknown_events:
            self.unknown_events.add(event.event)
            shown = repr(event.event) if event.event else "a line that is no event"
            self.add(f"ignored {shown} from the engine (a newer minigpt?)")

"""The panel above the charts that says what went wrong and what to do.

It shows while the engine is lost (until it is back), and for a while after a
bug in the dashboard itself, whose traceback goes to dashboard.log in the run
directory so that nothing is lost and the dashboard goes on.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from textual.widgets import Static

DASHBOARD_LOG = "dashboard.log"  # in the run directory: tracebacks of the dashboard's own errors
BUG_SECONDS = 20  # how long a dashboard error stays in the panel


class ErrorPanel(Static):
    """A titled message in the error colour, hidden while there is nothing to say."""

    def __init__(self, **kwargs: Any) -> None:
        """Plain text: messages quote paths and engine output, which may hold [brackets]."""
        super().__init__(markup=False, **kwargs)

    def show(self, title: str, text: str, seconds: float | None = None) -> None:
        """Show text under title (for `seconds`, or until hidden)."""
        self.border_title = title
        self.update(text)
        self.add_class("-shown")
        if seconds is not None:
            self.set_timer(seconds, self.hide)

    def hide(self) -> None:
        """Nothing to say any more."""
        self.remove_class("-shown")

    def show_lost(self, reason: str, started: bool) -> None:
        """The engine went away (started: it had run), or never started; r starts it again."""
        if started:
            title, then = "The engine stopped", "Press r to start it again from the last checkpoint"
        else:
            title, then = "The engine could not start", "Fix that, then press r to start it again"
        self.show(title, f"{reason}\n{then}, or q to quit.")

    def show_bug(self, what: str, context: str, run_dir: Path) -> str:
        """A dashboard bug (call it where it was caught): context and traceback appended to
        the run's dashboard.log, what happened shown; returns the line for the Log."""
        where = run_dir / DASHBOARD_LOG
        try:
            with open(where, "a", encoding="utf-8") as log:
                log.write(f"{context}:\n{traceback.format_exc()}\n")
            details = f"the traceback is in {where}"
        except OSError as failure:
            details = f"and {where} could not be written ({failure.strerror or failure})"
        self.show(
            "The dashboard hit a bug",
            f"{what}.\nThe engine is not affected and trains on; {details}.",
            BUG_SECONDS,
        )
        return f"dashboard error: {what}; {details}"

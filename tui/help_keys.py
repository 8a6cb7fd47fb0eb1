"""The help screen's key reference: the app's keys, then each pane's, from their bindings."""

from __future__ import annotations

from textual.binding import Binding, BindingType

from tui.config_pane import ConfigPane
from tui.generate_pane import GeneratePane
from tui.inspect_pane import InspectPane
from tui.learned_pane import LearnedPane

# Keys that work inside a pane besides those in the panes' bindings.
PANE_KEYS = [
    ("up/down", "earlier / later prompts (in the prompt)"),
    ("pgup/pgdn", "scroll the completions (in the Generate pane)"),
    ("escape", "cancel the completion streaming; else leave the prompt"),
    ("escape", "leave the Config editor"),
]


def described_keys(
    bindings: list[BindingType], where: str = "", hidden: bool = False
) -> list[tuple[str, str]]:
    """(key, what it does) of each binding (those the footer hides too, if hidden)."""
    return [
        (b.key_display or b.key, f"{b.description}{where}")
        for b in bindings
        if isinstance(b, Binding) and (b.show or hidden)
    ]


def help_keys(app_bindings: list[BindingType]) -> list[tuple[str, str]]:
    """Every key of the dashboard as (key, what it does), the app's first."""
    return [
        *described_keys(app_bindings, hidden=True),
        *described_keys(GeneratePane.BINDINGS, " (in the Generate pane)"),
        *described_keys(ConfigPane.BINDINGS, " (in the Config editor)"),
        *described_keys(InspectPane.BINDINGS, " (in the Inspect pane)", hidden=True),
        *described_keys(LearnedPane.BINDINGS, " (in the Learned pane)", hidden=True),
        *PANE_KEYS,
    ]

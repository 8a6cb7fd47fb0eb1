"""Modal screens: the key reference, and what quitting should do to the engine."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class HelpScreen(ModalScreen[None]):
    """Every key the dashboard answers to."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        """Show these (key, what it does) pairs."""
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        """A table of keys."""
        lines = "\n".join(f"  {key:<8} {what}" for key, what in self.keys)
        with Vertical(id="help-box"):
            yield Static("Keys", classes="dialog-title")
            yield Static(lines, id="help-keys")
            yield Static("escape closes this", classes="dialog-hint")


class QuitScreen(ModalScreen[str]):
    """Stop training and save, leave it training, or stay."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss('cancel')", "Cancel"),
        Binding("s", "dismiss('stop')", "Stop and save"),
        Binding("d", "dismiss('detach')", "Detach"),
    ]

    def __init__(self, engine_alive: bool) -> None:
        """Offer the engine choices only when there is an engine."""
        super().__init__()
        self.engine_alive = engine_alive

    def compose(self) -> ComposeResult:
        """The question and three buttons."""
        with Vertical(id="quit-box"):
            yield Static("Quit minigpt-tui?", classes="dialog-title")
            if self.engine_alive:
                yield Static(
                    "Stop the engine (it saves a checkpoint first), or detach and leave it "
                    "running: minigpt-tui --attach reconnects.",
                    classes="dialog-hint",
                )
            with Horizontal(id="quit-buttons"):
                if self.engine_alive:
                    yield Button("Stop and save (s)", id="stop", variant="error")
                    yield Button("Detach (d)", id="detach", variant="primary")
                else:
                    yield Button("Quit", id="detach", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Answer with the button's id."""
        self.dismiss(event.button.id or "cancel")

"""Modal screens: keys, quitting, config changes that need a restart, saving a config."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class HelpScreen(ModalScreen[None]):
    """Every key the dashboard answers to."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        """Show these (key, what it does) pairs."""
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        """A table of keys."""
        lines = "\n".join(f"  {key:<9} {what}" for key, what in self.keys)
        with Vertical(id="help-box"):
            yield Static("Keys", classes="dialog-title")
            with VerticalScroll(id="help-scroll"):  # scrolls where the terminal is short
                yield Static(lines, id="help-keys", markup=False)
            yield Static("up/down scroll · escape closes this", classes="dialog-hint")


class ChoiceScreen(ModalScreen[str]):
    """A dialog answered by the id of the button pressed ("cancel" without one)."""

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Answer with the button's id."""
        self.dismiss(event.button.id or "cancel")


class QuitScreen(ChoiceScreen):
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
            with Horizontal(classes="dialog-buttons"):
                if self.engine_alive:
                    yield Button("Stop and save (s)", id="stop", variant="error")
                    yield Button("Detach (d)", id="detach", variant="primary")
                else:
                    yield Button("Quit", id="detach", variant="primary")
                yield Button("Cancel (esc)", id="cancel")


class RestartScreen(ChoiceScreen):
    """Changes that need a fresh model: restart this run, start a new one, or revert them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss('cancel')", "Cancel"),
        Binding("n", "dismiss('new_run')", "New run"),
        Binding("v", "dismiss('revert')", "Revert them"),
    ]

    def __init__(self, changes: list[str], plan: str, step: int, new_run_dir: Path) -> None:
        """changes: "key: old -> new" lines; plan: what the new config implies."""
        super().__init__()
        self.changes = changes
        self.plan = plan
        self.step = step
        self.new_run_dir = new_run_dir

    def compose(self) -> ComposeResult:
        """The changes, what they imply, and four choices; Cancel has the focus."""
        with Vertical(id="restart-box"):
            yield Static("These changes need a fresh model", classes="dialog-title")
            yield Static("\n".join(self.changes), id="restart-changes", markup=False)
            yield Static(self.plan, id="restart-plan", markup=False)
            yield Static(
                f"Restart from scratch deletes this run's weights, checkpoints and curves "
                f"(step {self.step:,}). A new run keeps this one (saved, engine stopped) and "
                f"trains in {self.new_run_dir}. Revert puts the running values back in the editor "
                "and applies the rest; escape cancels.",
                classes="dialog-hint",
                markup=False,
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Restart from scratch", id="restart", variant="error")
                yield Button("New run (n)", id="new_run", variant="primary")
                yield Button("Revert (v)", id="revert")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        """Nothing destructive on a stray Enter."""
        self.query_one("#cancel", Button).focus()


class SaveConfigScreen(ModalScreen[str | None]):
    """Ask where to save the editor's config."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, default_path: str) -> None:
        """Offer default_path, editable."""
        super().__init__()
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        """A path field and two buttons."""
        with Vertical(id="save-box"):
            yield Static("Save the editor's text to", classes="dialog-title")
            yield Input(self.default_path, id="save-path")
            yield Static(
                "Your text is written as it is, comments included; an existing file is replaced.",
                classes="dialog-hint",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter saves."""
        event.stop()
        self._answer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Save or cancel."""
        if event.button.id == "save":
            self._answer()
        else:
            self.dismiss(None)

    def _answer(self) -> None:
        """The path typed, or None when empty."""
        path = self.query_one("#save-path", Input).value.strip()
        self.dismiss(path or None)

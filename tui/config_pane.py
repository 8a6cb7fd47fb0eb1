"""The Config pane: the run's configuration as editable TOML, checked before it is sent.

The editor holds the user's own text, comments and all. ctrl+s checks it with
the engine's own schema (minigpt.config) and, only when it is valid and differs
from the running config, asks the app to apply it; nothing is sent or written
otherwise. Beside the editor, the "plan" says what the edited config implies
(parameters, memory, tokens and time per step) and which changes apply at the
next step and which need a fresh model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static, TextArea
from textual.widgets.text_area import LanguageDoesNotExist

from minigpt.atomic import write_text_atomic
from minigpt.config import (
    Config,
    apply_values,
    changed_keys,
    changes,
    config_to_toml,
    flat_values,
    help_text,
    is_hot,
    parse_config,
    restart_keys,
)
from minigpt.config_header import RUNNING_HEADER
from minigpt.config_text import key_at, set_value
from minigpt.display import byte_size, number
from minigpt.errors import ConfigError
from minigpt.estimate import Footprint, fixed_vocab_size, footprint
from minigpt.events import ConfigAppliedEvent, ConfigRejectedEvent, ErrorEvent, Event
from minigpt.rundir.layout import next_run_dir
from tui.messages import Ask
from tui.screens import RestartScreen, SaveConfigScreen
from tui.status_line import StatusLine
from tui.wording import changes_text

KEYS_HINT = "ctrl+s apply · ctrl+r revert · ctrl+o save to a file · escape leaves"
EDITOR_SOURCE = "config"  # how error messages name the editor's text


def toml_editor() -> tuple[TextArea, bool]:
    """A TextArea highlighting TOML, or plain text when the highlighter is missing."""
    try:
        editor = TextArea(language="toml", id="config-editor", soft_wrap=False)
        highlighted = True
    except LanguageDoesNotExist:  # tree-sitter installed without its TOML grammar
        editor, highlighted = TextArea(id="config-editor", soft_wrap=False), False
    editor.show_line_numbers = True
    return editor, highlighted


MAX_VOCAB = 2**32  # token ids are stored in at most 32 bits: a larger vocabulary is no real one


class ConfigPane(Vertical):
    """Editor, plan and status line of the Config tab."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "apply", "Apply"),
        Binding("ctrl+r", "revert", "Revert"),
        Binding("ctrl+o", "save_file", "Save to file"),
        Binding("escape", "leave", "Leave editor", show=False),
    ]

    class NewRunRequested(Message):
        """Train the editor's config in a new run directory; this run is saved and stopped."""

        def __init__(self, pane: ConfigPane, config_text: str) -> None:
            """Carry the pane to tell how it went, and the config's text."""
            super().__init__()
            self.pane = pane
            self.config_text = config_text

    # Bound to the app's: the run the engine runs, and what it measured of it.
    running: reactive[Config | None] = reactive(None)
    vocab_size: reactive[int] = reactive(0)
    ms_per_step: reactive[float] = reactive(0.0)
    step: reactive[int] = reactive(0)
    run_dir: reactive[Path] = reactive(Path())

    def __init__(self, config_file: str | None = None, **kwargs: Any) -> None:
        """Make the parts up front, so updates work at any moment; config_file: the --config
        given, offered when saving to a file."""
        super().__init__(**kwargs)
        self.config_file = config_file
        self.editor, self.highlighted = toml_editor()
        self.editor.border_title = KEYS_HINT
        self.plan = Static(id="config-plan", markup=False)
        self.status = StatusLine(id="config-status")
        self.running_text = ""  # the text that stands for the running config
        self.planned_ms = 0.0  # the step time the plan scales from
        self.plan_config: Config | None = None  # the last valid config the plan describes

    def compose(self) -> ComposeResult:
        """Editor and plan side by side, the status line under them."""
        with Horizontal(id="config-body"):
            yield self.editor
            yield self.plan
        yield self.status

    def on_mount(self) -> None:
        """Say so when there is no highlighting."""
        if not self.highlighted:
            self.status.say(
                "TOML highlighting is not installed, so this is plain text; editing works."
            )

    # -- what the app binds into the pane ------------------------------------------

    def watch_running(self, config: Config | None) -> None:
        """The engine runs this config now; keep the user's text when it says the same."""
        if config is None:
            return
        text = self.editor.text
        if text.strip() and self._parse_quietly(text) == config:  # "" would parse to the defaults
            self.running_text = text
        else:
            edited = text != self.running_text
            self.running_text = config_to_toml(config, RUNNING_HEADER)
            if edited:
                self.status.say(
                    "The running config changed; your edits are kept (ctrl+r shows it)."
                )
            else:
                self.replace_text(self.running_text)
        self.update_plan()

    def validate_vocab_size(self, vocab_size: int) -> int:
        """The engine's vocabulary size if sane, else the one known before."""
        return vocab_size if 0 < vocab_size < MAX_VOCAB else self.vocab_size

    def watch_vocab_size(self) -> None:
        """A new run's vocabulary: the plan's sizes follow."""
        self.update_plan()

    def watch_ms_per_step(self, ms_per_step: float) -> None:
        """The measured time of a training step (0: none yet); the plan follows a change
        of more than 5%."""
        if not ms_per_step or abs(ms_per_step - self.planned_ms) > 0.05 * self.planned_ms:
            self.planned_ms = ms_per_step
            self.update_plan()

    def show_error(self, error: ConfigError | str) -> None:
        """An inline error; the cursor goes to the line it names."""
        self.status.say(str(error), error=True)
        line = getattr(error, "line", None)
        if line is not None:
            column = getattr(error, "column", None) or 1
            self.editor.move_cursor((line - 1, column - 1), center=True)

    # -- actions --------------------------------------------------------------

    # -- the engine's replies (tui.messages.Asker) ------------------------------------

    def sent(self, ask: Ask, request: str | None) -> None:
        """Say that the change is on its way (or that there is no engine to take it)."""
        if request is None:
            self.status.say("No engine to apply the config to.", error=True)
        elif ask.args.get("restart"):
            self.status.say("Restarting the run with the new config (building the model)...")
        else:
            self.status.say("Applying...")

    def answer(self, event: Event) -> None:
        """The engine applied the change, or says why not."""
        if isinstance(event, ConfigAppliedEvent):
            self.status.say(f"Applied at step {number(event.step, ',')}: {changes_text(event)}.")
        elif isinstance(event, ConfigRejectedEvent):
            self.show_error(f"{event.reason}: {', '.join(map(str, event.needs_restart))}")
        elif isinstance(event, ErrorEvent):
            self.show_error(event.message)

    def new_run_started(self, old: Path, new: Path) -> None:
        """The app started the editor's config in a new run directory."""
        self.status.say(f"New run in {new}; {old} is kept (minigpt-tui --run-dir {old}).")

    # -- actions --------------------------------------------------------------

    def action_apply(self) -> None:
        """ctrl+s: check the text and, when valid and different, apply it: hot changes at
        once, changes that need a fresh model after asking how."""
        if self.running is None:
            self.status.say("No engine yet: nothing to apply the config to.", error=True)
            return
        config = self.checked()
        if config is None:
            return
        changed = changes(self.running, config)
        if not changed:
            self.status.say("Nothing to apply: this is the running config.")
            return
        fresh = restart_keys(self.running, config)
        if not fresh:
            self.send(changed)
            return
        lines = [f"{key}: {changed[key][0]} -> {changed[key][1]}" for key in fresh]
        plan = "\n".join(self.plan_lines(config))
        screen = RestartScreen(lines, plan, self.step, next_run_dir(self.run_dir))
        self.app.push_screen(screen, lambda choice: self.restart_chosen(choice, changed, fresh))

    def restart_chosen(
        self, choice: str | None, changed: dict[str, list[object]], fresh: list[str]
    ) -> None:
        """Carry out the restart dialog's answer (fresh: the changed keys that need a fresh
        model)."""
        if choice == "restart":
            self.send(changed, restart=True)
        elif choice == "new_run":
            self.post_message(self.NewRunRequested(self, self.editor.text))
        elif choice == "revert":
            self.revert_keys(fresh)
            self.action_apply()
        else:
            self.status.say("Nothing applied; the editor keeps your text.")

    def send(self, changes: dict[str, list[object]], restart: bool = False) -> None:
        """Ask the engine to take the changes as one set command."""
        values = {key: new for key, (_, new) in changes.items()}
        self.post_message(Ask(self, "set", values=values, restart=restart))

    def action_revert(self) -> None:
        """ctrl+r: back to the running config's text (ctrl+z undoes this)."""
        self.replace_text(self.running_text)
        self.status.say("Reverted to the running config.")

    def action_save_file(self) -> None:
        """ctrl+o: after checking the text, ask where to write it."""
        if self.checked() is not None:
            self.app.push_screen(
                SaveConfigScreen(self.config_file or "config.toml"),
                lambda path: self.save_to(Path(path).expanduser()) if path else None,
            )

    def revert_keys(self, keys: list[str]) -> None:
        """Put the running values of keys back into the text, keeping its comments if possible."""
        assert self.running is not None, "only changes to a running config are reverted"
        running = flat_values(self.running)
        text: str | None = self.editor.text
        for key in keys:
            text = set_value(text, key, running[key]) if text is not None else None
        note = ""
        if text is None:  # a layout set_value cannot edit in place: write the config out anew
            edited = parse_config(self.editor.text, EDITOR_SOURCE)
            reverted = apply_values(edited, {key: running[key] for key in keys})
            text = config_to_toml(reverted, RUNNING_HEADER)
            note = " (the text was rewritten: its layout could not be edited in place)"
        self.replace_text(text)
        self.status.say(f"Reverted {', '.join(keys)} to the running values{note}.")

    def action_leave(self) -> None:
        """escape: give the keys back to the dashboard."""
        self.screen.set_focus(None)

    # -- helpers ----------------------------------------------------------------

    def checked(self) -> Config | None:
        """The editor's config, or None after showing why it is not valid."""
        try:
            return parse_config(self.editor.text, EDITOR_SOURCE)
        except ConfigError as error:
            self.show_error(error)
            return None

    def save_to(self, path: Path) -> None:
        """Write the editor's text as it is (comments and all) to path, atomically."""
        if path.is_dir():
            self.status.say(f"Not saved: {path} is a folder; give a file name.", error=True)
            return
        try:
            write_text_atomic(path, self.editor.text)
        except OSError as error:
            self.status.say(f"Not saved: {path}: {error.strerror or error}", error=True)
            return
        self.status.say(f"Saved to {path}.")

    def replace_text(self, text: str) -> None:
        """Replace the whole text as one edit that ctrl+z undoes."""
        editor = self.editor
        row, column = editor.cursor_location
        editor.replace(text, (0, 0), editor.document.end)
        row = min(row, editor.document.line_count - 1)
        editor.move_cursor((row, min(column, len(editor.document.get_line(row)))))

    @staticmethod
    def _parse_quietly(text: str) -> Config | None:
        """The config text says, or None."""
        try:
            return parse_config(text, EDITOR_SOURCE)
        except ConfigError:
            return None

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        """Keep the plan in step with the text."""
        event.stop()
        self.update_plan()

    def on_text_area_selection_changed(self, event: TextArea.SelectionChanged) -> None:
        """Above the editor: what the key under the cursor means and when a change applies."""
        event.stop()
        key = key_at(self.editor.text, self.editor.cursor_location[0] + 1)
        try:
            when = "applies at the next step" if is_hot(key or "") else "needs a restart"
            title = f"{key}: {help_text(key or '')} ({when})"
        except ConfigError:  # not on a known key's line
            title = KEYS_HINT
        self.editor.border_title = title

    # -- the plan ---------------------------------------------------------------

    def update_plan(self) -> None:
        """Describe the edited config (or the last valid one) next to the editor."""
        config = self._parse_quietly(self.editor.text)
        stale = config is None
        config = config or self.plan_config or self.running
        if config is None:
            self.plan.update("")
            return
        self.plan_config = config
        lines = self.plan_lines(config) + self._change_lines(config)
        if stale:
            lines.append("(as of the last valid text; ctrl+s says what is wrong)")
        self.plan.update("\n".join(lines))

    def plan_lines(self, config: Config) -> list[str]:
        """What config implies: parameters, memory, tokens and time per step, vocabulary."""
        vocab, vocab_note = self._vocab_for(config)
        size = footprint(config, vocab)
        return [
            f"params    {size.params / 1e6:,.2f}M",
            f"memory    ~{byte_size(size.memory_bytes)}",
            f"tok/step  {size.tokens_per_step:,}",
            f"step time {self._step_time(size)}",
            f"vocab     {vocab_note}",
        ]

    def _change_lines(self, config: Config) -> list[str]:
        """Which of config's changes apply at the next step and which need a restart."""
        if self.running is None:
            return []
        changed = changed_keys(self.running, config)
        if not changed:
            return ["same as the running config"]
        hot = [key for key in changed if is_hot(key)]
        restart = [key for key in changed if not is_hot(key)]
        lines = ["next step: " + ", ".join(hot)] if hot else []
        return lines + (["needs a restart: " + ", ".join(restart)] if restart else [])

    def _vocab_for(self, config: Config) -> tuple[int, str]:
        """The vocabulary size config implies, and how sure that is."""
        if fixed := fixed_vocab_size(config):
            return fixed, f"{fixed:,}"
        same_data = self.running is not None and self.running.data == config.data
        if same_data and self.vocab_size:
            return self.vocab_size, f"{self.vocab_size:,}"
        guess = self.vocab_size or 1
        return guess, f"~{guess:,} (until read)"

    def _step_time(self, size: Footprint) -> str:
        """Measured when the shape is the running one; else scaled by FLOPs."""
        if self.running is None or not self.planned_ms:
            return "known after a step"
        now = footprint(self.running, self.vocab_size or 1)
        if size.flops_per_step == now.flops_per_step:
            return f"{self.planned_ms:,.1f} ms"
        scaled = self.planned_ms * size.flops_per_step / now.flops_per_step
        return f"~{scaled:,.1f} ms (now {self.planned_ms:,.1f})"

"""The Generate pane: type a prompt, watch the model answer token by token."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, RichLog, Static


class GeneratePane(Vertical):
    """Finished completions, the one streaming now, and the prompt line."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "leave", "Leave prompt", show=False)]

    class Submitted(Message):
        """The user asked for a completion of this prompt."""

        def __init__(self, prompt: str) -> None:
            """Carry the prompt."""
            super().__init__()
            self.prompt = prompt

    def __init__(self, **kwargs: object) -> None:
        """Make the parts up front, so updates work at any moment."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.completions = RichLog(id="completions", wrap=True, markup=False)
        self.streaming = Static(id="streaming", markup=False)
        self.prompt = Input(placeholder="prompt: enter samples, escape leaves", id="prompt")
        self.finished: list[tuple[str, str, str]] = []  # (prompt, completion, note)

    def compose(self) -> ComposeResult:
        """Output above, prompt below."""
        yield self.completions
        yield self.streaming
        yield self.prompt

    def action_leave(self) -> None:
        """escape: give the keys back to the dashboard."""
        self.screen.set_focus(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Hand the prompt to the app."""
        event.stop()
        if event.value.strip():
            self.post_message(self.Submitted(event.value))

    def stream(self, prompt: str, text: str, step: int, tokens_per_sec: float) -> None:
        """Show the completion so far."""
        self.streaming.update(f"{prompt}{text}")
        self.streaming.border_subtitle = f"step {step:,} weights · {tokens_per_sec:,.0f} tokens/s"
        self.set_class(True, "-streaming")

    def finish(self, prompt: str, text: str, note: str) -> None:
        """Move the finished completion into the history."""
        self.finished.append((prompt, text, note))
        self.completions.write(f"{prompt}{text}\n[{note}]")
        self.streaming.update("")
        self.set_class(False, "-streaming")

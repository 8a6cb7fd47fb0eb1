"""Messages to the app: from the engine worker, and a pane's questions for the engine.

A pane that wants something of the engine posts `Ask(self, cmd, **args)`; the
app sends the command, tells the pane its id (`sent`; None: no engine), and passes on every
reply that carries that id (`answer`). Events for everyone (steps, evals,
states) stay with the app, which draws them.
"""

from __future__ import annotations

from typing import Any, Protocol

from textual.message import Message

from minigpt.events import Event


class Asker(Protocol):
    """A pane that asks the engine things, and hears the replies."""

    def sent(self, ask: Ask, request: str | None) -> None:
        """The asked command went out with this id; None: there was no engine to send it to."""
        ...

    def answer(self, event: Event) -> None:
        """A reply to one of this asker's commands (an error, a token, a result)."""
        ...


class Ask(Message):
    """A pane asks the app to send the engine a command and route the replies back."""

    def __init__(self, asker: Asker, cmd: str, **args: Any) -> None:
        """Carry who asks, the command and its arguments."""
        super().__init__()
        self.asker = asker
        self.cmd = cmd
        self.args = args


class EngineStatus(Message):
    """Progress while attaching to or starting an engine."""

    def __init__(self, text: str) -> None:
        """Carry the status line."""
        super().__init__()
        self.text = text


class EngineReady(Message):
    """Connected: the engine's hello (whatever came first, decoded)."""

    def __init__(self, hello: Event) -> None:
        """Carry the hello event."""
        super().__init__()
        self.hello = hello


class EventsWaiting(Message):
    """Engine events wait in the link's queue; one of these stands for any number."""

    def can_replace(self, message: Message) -> bool:
        """A newer notice makes an older, unhandled one redundant."""
        return isinstance(message, EventsWaiting)


class EngineLost(Message):
    """The engine could not be reached, or went away."""

    def __init__(self, reason: str) -> None:
        """Carry why."""
        super().__init__()
        self.reason = reason

"""Messages the engine worker posts to the app; the app's handlers own all UI state."""

from __future__ import annotations

from textual.message import Message

from minigpt.events import Event


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

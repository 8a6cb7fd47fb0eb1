"""Which pane an engine event answers, by the rule its class declares.

A pane asks through the app (tui/messages.py: `Ask`); its command goes out with an id,
and `Replies` remembers that the pane waits for it. Who hears an event, and whether it
ends the request it answers, is declared once on the event's class (`Event.audience`
and `Event.ends_request` in minigpt/events.py); `route` reads only that:

- news for everyone (steps, evals, states) is the app's to draw;
- a reply for its asker alone goes to the pane that waits for its id; one that no pane
  waits for (its request forgotten, asked of an engine since replaced, or sent by one of
  the app's own keys) is the app's: it shows an error, and logs what it cannot draw;
- news that answers an asker (a config change, a completion) is drawn by the app in
  every dashboard, the asker's included, and is also the waiting pane's answer.

A request is forgotten at the reply that ends it, or when a new engine says hello.
"""

from __future__ import annotations

from dataclasses import dataclass

from minigpt.events import Audience, Event
from tui.messages import Asker


@dataclass(frozen=True)
class Route:
    """Where one engine event goes in this dashboard."""

    news: bool  # the app draws it
    asker: Asker | None = None  # the pane it answers
    command: str = ""  # the command it answers


class Replies:
    """The panes waiting for replies, by the id of the command each sent."""

    def __init__(self) -> None:
        """Nobody waits yet."""
        self.waiting: dict[str, tuple[Asker, str]] = {}  # request id -> who asked, and what

    def expect(self, request: str, asker: Asker, command: str) -> None:
        """asker waits for the replies to the command sent with this id."""
        self.waiting[request] = (asker, command)

    def forget_all(self) -> None:
        """Wait for nothing: a new engine answers nothing the last one was asked."""
        self.waiting.clear()

    def route(self, event: Event) -> Route:
        """Where event goes; the request it answers is forgotten if event ends it."""
        request = getattr(event, "id", None)
        if not isinstance(request, str) or request not in self.waiting:
            return Route(news=True)
        asker, command = self.waiting[request]
        if event.ends_request:
            del self.waiting[request]
        return Route(news=event.audience is not Audience.ASKER, asker=asker, command=command)

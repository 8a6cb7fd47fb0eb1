"""Moving an engine's events into the dashboard, from the app's worker thread.

`pump_events` connects through a link (or starts the engine), then reads events into
an `Inbox` until cancelled or the connection breaks. The app is told by
messages: EngineStatus while connecting, EngineReady with the hello,
EventsWaiting when events wait in the inbox, EngineLost with why it stopped.
At most one EventsWaiting is in flight, so a fast run's hundreds of steps a
second never crowd the keys out of the app's message queue.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from textual.message import Message

from minigpt.errors import MiniGPTError, described
from minigpt.events import Event
from tui.link import Link
from tui.messages import EngineLost, EngineReady, EngineStatus, EventsWaiting

READ_SECONDS = 0.25  # how long one read waits, so a cancel is seen within this


class Inbox:
    """Events read by the worker, waiting for the UI thread to apply them."""

    def __init__(self) -> None:
        """Empty, with no notice in flight."""
        self.events: deque[Event] = deque()
        self.notified = threading.Event()  # set while an EventsWaiting is on its way

    def put(self, event: Event, post: Callable[[Message], object]) -> None:
        """Queue an event; post EventsWaiting unless one is already on its way."""
        self.events.append(event)
        if not self.notified.is_set():
            self.notified.set()
            post(EventsWaiting())

    def take(self) -> list[Event]:
        """Every waiting event, oldest first; later ones get a new notice."""
        self.notified.clear()
        taken = []
        while self.events:
            taken.append(self.events.popleft())
        return taken


def pump_events(
    link: Link,
    inbox: Inbox,
    post: Callable[[Message], object],
    cancelled: Callable[[], bool],
) -> None:
    """Connect through link, then move its events into inbox until cancelled or lost."""

    def status(text: str) -> None:
        post(EngineStatus(text))

    try:
        connection = link.open(status, cancelled)
    except Exception as error:  # noqa: BLE001 - whatever stops the start is shown, not lost
        post(EngineLost(str(error) if isinstance(error, MiniGPTError) else described(error)))
        return
    post(EngineReady(connection.hello))
    while not cancelled():
        try:
            event = connection.next_event(timeout=READ_SECONDS)
        except (MiniGPTError, OSError, ValueError) as error:
            if not cancelled():  # cancelled: the app closed this link itself
                post(EngineLost(str(error)))
            return
        if event is not None:
            inbox.put(event, post)

"""The engine's notices, sent: to the webhook, and to every dashboard attached.

`Notifier.see(event)` hands each event the engine emits to the rules (notices.py) and sends
the notice they call for: to notify.url through the Webhook (webhook.py) and, with
notify.terminal, to every client as a NoticeEvent, on which a dashboard rings its terminal.
A watchdog thread asks the rules about a stall every WATCH_S seconds and sends that notice
itself, because the loop that would send it is the one that is stuck (the server's
broadcast and the webhook's post are safe from any thread). What goes wrong in sending
comes back through `said()`, which the engine's loop drains into its own events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minigpt.config import Config
from minigpt.events import Event, LogEvent, NoticeEvent
from minigpt.service.notices import NoticeRules
from minigpt.service.webhook import Webhook

WATCH_S = 1.0  # how often the watchdog looks at the step under way


class Notifier:
    """One engine's notices: decided from its events and a stall watchdog, then sent."""

    def __init__(
        self,
        run_dir: Path,
        config: Callable[[], Config],
        best_val_loss: float,
        broadcast: Callable[[dict[str, Any]], None],
    ) -> None:
        """Notices for the run in run_dir, under the config `config()` gives, the run's best
        val loss so far, and `broadcast`, which sends a message to every client."""
        self.config = config
        self.broadcast = broadcast
        self.rules = NoticeRules(run_dir.name, config, best_val_loss)
        self.webhook = Webhook(str(run_dir.resolve()))
        self.closing = threading.Event()
        self.watchdog = threading.Thread(target=self._watch, name="minigpt-stall", daemon=True)

    def start(self) -> None:
        """Start the sender and the watchdog."""
        self.webhook.start()
        self.watchdog.start()

    def see(self, event: Event) -> None:
        """Send what `event`, emitted now, calls for."""
        notice = self.rules.see(event, time.monotonic())
        if notice is not None:
            self._send(notice)

    def said(self) -> list[LogEvent]:
        """The sender's news since the last call (a webhook failing, or working again)."""
        return self.webhook.said()

    def close(self) -> None:
        """Stop the watchdog, and the sender once it tried what is queued (bounded waits)."""
        self.closing.set()
        if self.watchdog.is_alive():
            self.watchdog.join(WATCH_S)
        self.webhook.close()

    def _send(self, notice: NoticeEvent) -> None:
        """A notice to the webhook and the dashboards, as [notify] asks."""
        notify = self.config().notify
        if notify.url:
            self.webhook.post(notify.url, notify.body, notice)
        if notify.terminal:
            self.broadcast(notice.to_dict())

    def _watch(self) -> None:
        """Look for a stall every WATCH_S seconds until close()."""
        while not self.closing.wait(WATCH_S):
            notice = self.rules.stalled(time.monotonic())
            if notice is not None:
                self._send(notice)

"""Notices POSTed to a webhook from a thread of its own: training never waits on the network.

`post(url, body, notice)` queues a notice and returns at once; past QUEUE_SIZE waiting
(only while the webhook fails, which was said) it drops the notice. The thread sends each as
a JSON object (kind, title, message, run_dir, step, time) or, with body "text", as plain
text with the title in a `Title` header, the form ntfy.sh and services like it take (RFC
2047-encoded when not ASCII, which ntfy decodes).

What can go wrong, and what happens then:

- no answer (a host that is down, a server that accepts and never replies): each attempt
  gives up after ATTEMPT_TIMEOUT_S;
- refused, unreachable, an unknown name, a TLS failure, an answer other than 2xx: the
  attempt fails;
- a failed attempt is tried again, ATTEMPTS times in all, BACKOFF_S apart and twice that
  before each later try; a notice whose tries all fail is dropped;
- the first failed attempt, after a success or since the start, is said once in `said()`:
  a warning naming notify.url by its scheme and host alone (a webhook's path is often its
  secret) and why; nothing more is said until a notice gets through, which is said too.
  The engine's loop drains `said()`, so this thread emits nothing itself;
- close() tries what is still queued once each, waiting at most CLOSE_WAIT_S in all, so a
  `minigpt train` that exits on finishing still sends its last notice.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request

from minigpt.errors import described
from minigpt.events import LogEvent, NoticeEvent

QUEUE_SIZE = 32
ATTEMPTS = 3
ATTEMPT_TIMEOUT_S = 5.0
BACKOFF_S = 1.0
CLOSE_WAIT_S = ATTEMPT_TIMEOUT_S + 1.0
USER_AGENT = "minigpt-tui"  # some services refuse urllib's own


def shown(url: str) -> str:
    """A webhook's address as said in the Log: its scheme and host, the rest elided."""
    parts = urllib.parse.urlsplit(url)
    rest = "..." if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/{rest}"


def _header(text: str) -> str:
    """One line for an HTTP header: control characters as spaces, RFC 2047 unless ASCII."""
    line = "".join(c if c.isprintable() else " " for c in text)
    if line.isascii():
        return line
    return f"=?UTF-8?B?{base64.b64encode(line.encode()).decode()}?="


def _why(error: Exception) -> str:
    """Why an attempt failed, in a few words."""
    if isinstance(error, urllib.error.HTTPError):
        return f"the server answered {error.code} {error.reason}"
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError):
        return f"no answer within {ATTEMPT_TIMEOUT_S:g} s"
    return described(reason) if isinstance(reason, BaseException) else str(reason)


class Webhook:
    """POSTs notices to the address each comes with, one at a time, on its own thread."""

    def __init__(self, run_dir: str) -> None:
        """A sender for the run in run_dir (named in each JSON notice); start() starts it."""
        self.run_dir = run_dir
        self.queue: queue.Queue[tuple[str, str, NoticeEvent] | None] = queue.Queue()
        self.problems: queue.SimpleQueue[LogEvent] = queue.SimpleQueue()
        self.failing = False  # a try failed and was said; nothing got through since
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="minigpt-webhook", daemon=True)

    def start(self) -> None:
        """Begin sending what is posted."""
        self.thread.start()

    def post(self, url: str, body: str, notice: NoticeEvent) -> None:
        """Queue a notice for url, as body "json" or "text"; never blocks."""
        if self.queue.qsize() < QUEUE_SIZE:
            self.queue.put((url, body, notice))

    def said(self) -> list[LogEvent]:
        """What the sender has to say since the last call: a failure, or a recovery."""
        said = []
        with contextlib.suppress(queue.Empty):
            while True:
                said.append(self.problems.get_nowait())
        return said

    def close(self) -> None:
        """Try what is queued once each, for at most CLOSE_WAIT_S, and stop."""
        self.closing.set()
        self.queue.put(None)
        if self.thread.is_alive():
            self.thread.join(CLOSE_WAIT_S)

    def _serve(self) -> None:
        """Send each queued notice in turn until close()."""
        while (item := self.queue.get()) is not None:
            try:
                self._send(*item)
            finally:
                self.queue.task_done()
        self.queue.task_done()

    def _send(self, url: str, body: str, notice: NoticeEvent) -> None:
        """POST one notice, trying again after failures while the engine is not closing."""
        request = self._request(url, body, notice)
        for attempt in range(ATTEMPTS):
            try:
                with urllib.request.urlopen(request, timeout=ATTEMPT_TIMEOUT_S) as answer:
                    answer.read()
            except (OSError, ValueError, http.client.HTTPException) as error:
                self._say_failed(url, _why(error))
                last = attempt == ATTEMPTS - 1 or self.closing.is_set()
                if last or self.closing.wait(BACKOFF_S * 2**attempt):
                    return
            else:
                self._say_through(url)
                return

    def _request(self, url: str, body: str, notice: NoticeEvent) -> urllib.request.Request:
        """The POST for a notice: JSON, or plain text titled in a header."""
        if body == "text":
            data = notice.message.encode()
            headers = {"Title": _header(notice.title), "Content-Type": "text/plain; charset=utf-8"}
        else:
            fields = notice.to_dict()
            sent = {key: fields[key] for key in ("kind", "title", "message", "step", "time")}
            data = json.dumps(sent | {"run_dir": self.run_dir}).encode()
            headers = {"Content-Type": "application/json"}
        headers["User-Agent"] = USER_AGENT
        return urllib.request.Request(url, data=data, headers=headers, method="POST")

    def _say_failed(self, url: str, why: str) -> None:
        """Say a failure, unless one was said and nothing got through since."""
        if not self.failing:
            self.failing = True
            self.problems.put(
                LogEvent(
                    "warning",
                    f"notifications to {shown(url)} (notify.url) fail: {why}; training goes "
                    "on, and this is said again only after one gets through",
                )
            )

    def _say_through(self, url: str) -> None:
        """Say that notices get through again, after a failure was said."""
        if self.failing:
            self.failing = False
            self.problems.put(LogEvent("info", f"notifications to {shown(url)} get through again"))

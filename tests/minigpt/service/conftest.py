"""Webhooks for the notification tests: one that answers, one that never does, and an
address nobody listens on, all on 127.0.0.1."""

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class Post:
    """One request a Receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object."""
        return json.loads(self.body)

    @property
    def kind(self) -> str:
        """The kind of the notice a JSON body holds."""
        return self.json()["kind"]


class Receiver:
    """A webhook on 127.0.0.1 that keeps every POST, `delay` seconds after it came, and
    answers `status`."""

    def __init__(self) -> None:
        """Listening on a free port, in a thread of its own."""
        self.posts: list[Post] = []
        self.status = 200
        self.delay = 0.0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            """Keeps the request, then answers."""

            def do_POST(self) -> None:
                """Keep the POST after receiver.delay, then answer receiver.status."""
                time.sleep(receiver.delay)
                size = int(self.headers.get("Content-Length", 0))
                post = Post(self.path, dict(self.headers), self.rfile.read(size))
                receiver.posts.append(post)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-topic"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Post]:
        """The posts, once there are at least count of them; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        while len(self.posts) < count:
            assert time.monotonic() < deadline, f"{len(self.posts)} posts, not {count}"
            time.sleep(0.01)
        return self.posts

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook that answers, on 127.0.0.1."""
    hook = Receiver()
    yield hook
    hook.close()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """The address of a server that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # the kernel accepts into the backlog; nobody reads
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


@pytest.fixture
def nobody() -> str:
    """The address of a port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"

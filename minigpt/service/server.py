"""The engine's unix socket: many clients, and none of them can slow training.

One background thread accepts, reads and drains backlogs with a selector. The
training thread sends an event straight away when a client keeps up, and
otherwise appends it to that client's outbox and wakes the I/O thread: either
way it never blocks on a client. An outbox is bounded: when a client falls behind, its
queued step events are coalesced (the newest one stays), and a client that is
still hopelessly behind is disconnected. Received command lines are handed to
the engine through `on_line`, in the I/O thread; the engine queues them for
its own loop.

The socket file is private (mode 0600). Unix socket paths are limited to about
100 bytes; for a longer run directory the socket lives in a private folder
under the system's temporary directory and `engine.sock` is a symlink to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import selectors
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minigpt.service.protocol import MAX_LINE_BYTES, encode

SOCKET_PATH_LIMIT = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
OUTBOX_SOFT_LIMIT = 256  # past this, queued step events are coalesced
OUTBOX_HARD_LIMIT = 4096  # past this, the client is dropped


def short_socket_path(link: Path) -> Path:
    """Where to bind when `link` is too long for a unix socket path."""
    folder = Path(tempfile.gettempdir()) / f"minigpt-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    digest = hashlib.sha256(str(link.resolve()).encode()).hexdigest()[:16]
    return folder / f"{digest}.sock"


def connectable_path(path: Path) -> str:
    """The path to hand to connect(): the symlink's target when the path is too long."""
    text = str(path)
    if len(text.encode()) > SOCKET_PATH_LIMIT and path.is_symlink():
        return os.readlink(path)
    return text


class Peer:
    """One connected client: its socket, unread input and queued output."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        """Wrap an accepted socket."""
        self.sock = sock
        self.number = number
        self.inbox = bytearray()
        self.discarding = False  # inside a line that was too long
        self.outbox: deque[tuple[str, bytes]] = deque()
        self.sending = memoryview(b"")
        self.ready = False  # set once the engine has queued its hello
        self.closed = False


class ControlServer:
    """A unix socket server with per-client bounded outboxes, run by one I/O thread."""

    def __init__(
        self,
        path: Path,
        on_line: Callable[[Peer, bytes], None],
        on_connect: Callable[[Peer], None],
        on_disconnect: Callable[[Peer], None],
    ) -> None:
        """Prepare to serve at `path`; call start() to bind and begin."""
        self.path = path
        self.on_line = on_line
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.peers: dict[int, Peer] = {}
        self.lock = threading.Lock()
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.listener: socket.socket | None = None
        self.thread = threading.Thread(target=self._serve, name="minigpt-socket", daemon=True)
        self.stopping = False
        self._bound: Path | None = None
        self._count = 0

    def start(self) -> None:
        """Bind (replacing a stale socket file), listen and start the I/O thread."""
        bind_to = self.path
        if len(str(self.path).encode()) > SOCKET_PATH_LIMIT:
            bind_to = short_socket_path(self.path)
        for stale in {bind_to, self.path}:
            # The caller holds the run's lock, so a socket file here is a dead engine's.
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window for others
        try:
            listener.bind(str(bind_to))
        finally:
            os.umask(old_umask)
        os.chmod(bind_to, 0o600)
        if bind_to != self.path:
            os.symlink(bind_to, self.path)
        listener.listen(16)
        listener.setblocking(False)
        self.listener = listener
        self._bound = bind_to
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.thread.start()

    @property
    def client_count(self) -> int:
        """Clients connected now."""
        with self.lock:
            return len(self.peers)

    def send(self, peer: Peer, message: dict[str, Any], ready: bool = False) -> None:
        """Send (or queue) a message for one client; ready=True lets broadcasts reach it."""
        with self.lock:
            backlog = self._deliver(peer, message)
            peer.ready = peer.ready or ready
        if backlog:
            self._wake()

    def broadcast(self, message: dict[str, Any]) -> None:
        """Send (or queue) a message for every client that has had its hello."""
        backlog = False
        with self.lock:
            for peer in list(self.peers.values()):
                if peer.ready:
                    backlog |= self._deliver(peer, message)
        if backlog:
            self._wake()

    def _deliver(self, peer: Peer, message: dict[str, Any]) -> bool:
        """Send at once when the client keeps up; else queue. True when output is queued.

        Writing from the caller's thread, rather than waking the I/O thread for
        every event, keeps a third thread from preempting torch's workers each
        step; the I/O thread only drains backlogs. Called with the lock held.
        """
        if not peer.outbox and not peer.sending and not peer.closed:
            data = encode(message)
            try:
                sent = peer.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                peer.closed = True
                return True  # the I/O thread reaps it
            if sent == len(data):
                return False
            peer.sending = memoryview(data)[sent:]
            return True
        self._queue(peer, message)
        return True

    def _queue(self, peer: Peer, message: dict[str, Any]) -> None:
        """Append to an outbox, coalescing step events and dropping hopeless clients."""
        kind = message.get("event", "")
        if len(peer.outbox) >= OUTBOX_SOFT_LIMIT and kind == "step":
            peer.outbox = deque(item for item in peer.outbox if item[0] != "step")
        if len(peer.outbox) >= OUTBOX_HARD_LIMIT:
            peer.closed = True  # the I/O thread closes it
            return
        peer.outbox.append((kind, encode(message)))

    def _wake(self) -> None:
        """Nudge the I/O thread to send what was queued."""
        with contextlib.suppress(BlockingIOError, OSError):
            self.wake_w.send(b"\0")

    def close(self) -> None:
        """Flush briefly, close every connection and remove the socket file."""
        self.stopping = True
        self._wake()
        if self.thread.is_alive():
            self.thread.join(timeout=2)
        for peer in list(self.peers.values()):
            peer.sock.close()
        self.peers.clear()
        if self.listener is not None:
            self.listener.close()
        for path in {self._bound, self.path}:
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        self.wake_r.close()
        self.wake_w.close()

    def _serve(self) -> None:
        """The I/O loop: accept, read lines, write outboxes, until close()."""
        flush_deadline = None
        while True:
            self._update_interest()
            if self.stopping:
                flush_deadline = flush_deadline or time.monotonic() + 1.0
                if not self._pending_output() or time.monotonic() > flush_deadline:
                    return
            for key, mask in self.selector.select(timeout=0.05 if self.stopping else 0.5):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        self.wake_r.recv(4096)
                else:
                    peer = key.data
                    if mask & selectors.EVENT_READ:
                        self._read(peer)
                    if mask & selectors.EVENT_WRITE and not peer.closed:
                        self._write(peer)

    def _pending_output(self) -> bool:
        """Whether any client still has queued output."""
        with self.lock:
            return any(p.outbox or p.sending for p in self.peers.values())

    def _update_interest(self) -> None:
        """Watch for writability only where there is something to write; reap closed peers."""
        with self.lock:
            peers = list(self.peers.values())
        for peer in peers:
            if peer.closed:
                self._drop(peer)
                continue
            events = selectors.EVENT_READ
            if peer.outbox or peer.sending:
                events |= selectors.EVENT_WRITE
            self.selector.modify(peer.sock, events, peer)

    def _accept(self) -> None:
        """Take a new connection."""
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self._count += 1
        peer = Peer(sock, self._count)
        with self.lock:
            self.peers[peer.number] = peer
        self.selector.register(sock, selectors.EVENT_READ, peer)
        self.on_connect(peer)

    def _read(self, peer: Peer) -> None:
        """Read what arrived and hand on each complete line."""
        try:
            data = peer.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # gone, perhaps mid-line: the partial line is dropped with it
            peer.closed = True
            return
        peer.inbox += data
        while (end := peer.inbox.find(b"\n")) >= 0:
            line = bytes(peer.inbox[:end])
            del peer.inbox[: end + 1]
            if peer.discarding:
                peer.discarding = False
            elif line.strip():
                self.on_line(peer, line)
        if len(peer.inbox) > MAX_LINE_BYTES:
            peer.inbox.clear()
            if not peer.discarding:
                peer.discarding = True
                self.on_line(peer, b"")  # the engine answers an empty line with an error

    def _write(self, peer: Peer) -> None:
        """Send as much backlog as the socket takes without blocking."""
        with self.lock:  # the engine thread may be sending to this peer too
            while True:
                if not peer.sending:
                    if not peer.outbox:
                        return
                    peer.sending = memoryview(b"".join(item[1] for item in peer.outbox))
                    peer.outbox.clear()
                try:
                    sent = peer.sock.send(peer.sending)
                except BlockingIOError:
                    return
                except OSError:
                    peer.closed = True
                    return
                peer.sending = peer.sending[sent:]

    def _drop(self, peer: Peer) -> None:
        """Forget a closed client."""
        with self.lock:
            self.peers.pop(peer.number, None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(peer.sock)
        peer.sock.close()
        self.on_disconnect(peer)

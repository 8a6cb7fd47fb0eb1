"""A small client for the engine's control socket.

    client = Client.spawn("runs/t", ["--set", "train.max_iters=300"])  # or Client.connect
    client.send("start")
    for event in client.events(timeout=1.0):  # typed: StepEvent, EvalEvent, ...
        print(event.name, event.to_dict())

Events come back decoded (`minigpt.events.decode`, which never raises: what
this version does not know arrives as an `UnknownEvent`); `next_line` gives
the raw JSON line instead, for recorders. `connect` reads the engine's hello
(a `HelloEvent`, available as `client.hello`); `spawn`
starts a detached engine (its own session, so a dropped SSH connection does
not take it down, output in engine.log) and connects once it listens. The
dashboard, the CLI and the tests all use this class.
"""

from __future__ import annotations

import itertools
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from minigpt.errors import EngineError
from minigpt.events import Event, HelloEvent, decode
from minigpt.rundir.layout import RunDir
from minigpt.service.protocol import encode
from minigpt.service.server import connectable_path

PROGRESS_EVERY_S = 2.0  # how often a slow start's progress is passed on


class Client:
    """One connection to an engine: send commands, read events."""

    def __init__(self, sock: socket.socket, run_dir: Path) -> None:
        """Wrap a connected socket; use connect() or spawn()."""
        self.sock = sock
        self.run_dir = run_dir
        self.buffer = bytearray()
        self.process: subprocess.Popen[bytes] | None = None
        # Ids unique across every client of a run: replies and streams name the request
        # they answer, so two dashboards sampling at once never see each other's.
        self._ids = (f"{secrets.token_hex(4)}-{n}" for n in itertools.count(1))
        self.hello: HelloEvent  # what the engine said on connecting; set by connect()

    @classmethod
    def connect(cls, run_dir: str | Path, timeout: float = 10.0) -> Client:
        """Connect to the engine serving run_dir and read its hello."""
        run_dir = Path(run_dir)
        path = RunDir(run_dir).socket
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(connectable_path(path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise EngineError(f"no engine is serving {run_dir}") from None
        except OSError as error:
            sock.close()
            raise EngineError(f"cannot connect to {path}: {error.strerror or error}") from None
        client = cls(sock, run_dir)
        try:
            hello = client.next_event(timeout)
        except (OSError, ValueError):  # the engine went away as we arrived (it is exiting)
            hello = None
        if not isinstance(hello, HelloEvent):
            client.close()
            raise EngineError(f"the engine at {run_dir} did not say hello")
        client.hello = hello
        return client

    @classmethod
    def spawn(
        cls,
        run_dir: str | Path,
        engine_args: Sequence[str] = (),
        timeout: float = 120.0,
        cancelled: Callable[[], bool] = lambda: False,
        progress: Callable[[str], None] = lambda text: None,
    ) -> Client:
        """Start a detached engine for run_dir and connect to it once it listens.

        The engine fails to start only after `timeout` seconds without a sign of
        life: while it prints progress (tokenizing a big corpus takes minutes) it
        is waited for, and its latest progress line goes to `progress` now and then.
        `cancelled` is polled while waiting, so a caller that is shutting down
        is not held up by a slow start (the engine then idles out by itself).
        """
        run_dir = Path(run_dir)
        paths = RunDir(run_dir)
        paths.create()
        command = [
            sys.executable,
            "-m",
            "minigpt",
            "engine",
            "--run-dir",
            str(run_dir),
            "--detached",
        ]
        with open(paths.log, "ab") as log:
            process = subprocess.Popen(
                [*command, *engine_args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # no SIGHUP from our terminal going away
            )
        deadline = time.monotonic() + timeout
        log_size = _size(paths.log)
        reported = 0.0
        while True:
            if (size := _size(paths.log)) != log_size:  # a sign of life: wait on
                log_size, deadline = size, time.monotonic() + timeout
                if time.monotonic() - reported >= PROGRESS_EVERY_S:
                    reported = time.monotonic()
                    progress(_last_line(paths.log))
            if process.poll() is not None:
                said = _last_error(paths.log) or f"it exited with code {process.returncode}"
                raise EngineError(f"{said} (the engine's output is in {paths.log})")
            if paths.socket.exists():
                try:
                    client = cls.connect(run_dir, timeout=max(1.0, deadline - time.monotonic()))
                except EngineError:
                    pass  # bound but not yet listening
                else:
                    client.process = process
                    return client
            if time.monotonic() > deadline:
                raise EngineError(
                    f"the engine for {run_dir} did not start: no sign of life for {timeout:g}s"
                )
            if cancelled():
                raise EngineError("cancelled while the engine was starting")
            time.sleep(0.05)

    def send(self, cmd: str, **args: Any) -> str:
        """Send one command; returns its id (echoed in errors about it)."""
        request_id = str(args.pop("id", None) or next(self._ids))
        self.sock.sendall(encode({"cmd": cmd, "id": request_id, **args}))
        return request_id

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (for tests of bad input)."""
        self.sock.sendall(data)

    def next_line(self, timeout: float) -> bytes | None:
        """The next event's raw JSON line (no newline), or None when none arrives
        within timeout seconds."""
        deadline = time.monotonic() + timeout
        while (end := self.buffer.find(b"\n")) < 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not data:
                raise EngineError(f"the engine for {self.run_dir} closed the connection")
            self.buffer += data
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 1]
        return line

    def next_event(self, timeout: float) -> Event | None:
        """The next event, decoded, or None when none arrives within timeout seconds."""
        line = self.next_line(timeout)
        return None if line is None else decode(line)

    def events(self, timeout: float) -> Iterator[Event]:
        """Events as they come, until none arrives for timeout seconds."""
        while (event := self.next_event(timeout)) is not None:
            yield event

    def wait_for(
        self, match: str | type[Event] | Callable[[Event], bool], timeout: float = 30.0
    ) -> Event:
        """The first event with this name, of this class, or satisfying this test;
        TimeoutError if none arrives within timeout seconds."""
        test: Callable[[Event], bool]
        if isinstance(match, str):
            test, what = (lambda event: event.name == match), match
        elif not isinstance(match, type):
            test, what = match, "matching"
        else:
            kind: type[Event] = match
            test, what = (lambda event: isinstance(event, kind)), kind.name
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            event = self.next_event(remaining)
            if event is not None and test(event):
                return event
        raise TimeoutError(f"no {what} event in {timeout}s")

    def close(self) -> None:
        """Disconnect (the engine keeps running)."""
        self.sock.close()


def _size(log: Path) -> int:
    """How many bytes an engine's log holds (0 before it exists)."""
    try:
        return log.stat().st_size
    except OSError:
        return 0


def _last_line(log: Path) -> str:
    """The last line of an engine's log (a progress line rewritten with \r counts as
    its latest state), read from the file's end only."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, _size(log) - 4096))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _last_error(log: Path) -> str:
    """The last line of an engine's log, which says why it could not start."""
    return _last_line(log).removeprefix("minigpt: error: ")

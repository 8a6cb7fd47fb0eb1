"""`minigpt-tui --serve` without a browser: who the gate lets in, and what it says when it
cannot serve. The browser itself: tests/e2e/test_browser.py."""

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from minigpt.errors import EngineError
from minigpt.events import Event
from tui.cli import main
from tui.web.gate import Gate, same_origin
from tui.web.serve import is_loopback, serve


class QuietEngine:
    """A connection to an engine that says nothing."""

    hello: Event = Event()

    def next_event(self, timeout: float) -> Event | None:
        """Nothing, ever."""
        return None


class StubLink:
    """A link whose engine answers at once, or cannot be reached."""

    run_dir = Path("runs/stub")
    config_file: str | None = None

    def __init__(self, failure: str = "") -> None:
        """failure: the EngineError open() raises, if any."""
        self.failure = failure
        self.opened = False

    def open(self, status: Callable[[str], None], cancelled: Callable[[], bool]) -> QuietEngine:
        """The quiet engine, or the failure."""
        self.opened = True
        if self.failure:
            raise EngineError(self.failure)
        return QuietEngine()

    def send(self, cmd: str, **args: object) -> str | None:
        """Nothing to send to."""
        return None

    def close(self) -> None:
        """Nothing to close."""

    def restart(self) -> None:
        """Nothing to restart."""

    def new_run(self, config_text: str) -> Path:
        """Not used here."""
        raise NotImplementedError


def test_the_token_opens_and_the_cookie_admits() -> None:
    """Only the link's own token opens, only the cookie it buys admits, and two servers'
    cookies have different names."""
    gate, other = Gate(), Gate()
    assert gate.link("http://127.0.0.1:8000") == f"http://127.0.0.1:8000/?token={gate.token}"
    assert gate.opens({"token": gate.token})
    assert not gate.opens({"token": other.token}) and not gate.opens({})
    assert gate.admits({gate.cookie_name: gate.cookie_value()})
    assert not gate.admits({gate.cookie_name: gate.token})  # the token is not the cookie
    assert not gate.admits({other.cookie_name: other.cookie_value()}) and not gate.admits({})
    assert gate.cookie_name != other.cookie_name


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://localhost:9999", "localhost:9999", True),  # through ssh -L 9999:...:8000
        ("https://Box.example:443", "box.example:443", True),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("http://127.0.0.1:3000", "127.0.0.1:8000", False),  # another local site
        ("http://evil.example", "127.0.0.1:8000", False),
        ("null", "127.0.0.1:8000", False),  # a sandboxed frame or a file:// page
        ("file://127.0.0.1:8000", "127.0.0.1:8000", False),
        (None, "127.0.0.1:8000", False),
        ("http://127.0.0.1:8000", None, False),
    ],
)
def test_same_origin(origin: str | None, host: str | None, same: bool) -> None:
    """A websocket's Origin must name the very host and port the request went to."""
    assert same_origin(origin, host) is same


def test_loopback_hosts() -> None:
    """127.0.0.0/8, ::1 and localhost are this machine only; anything else warns."""
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.2", "box.example"]))


def test_a_taken_port_is_one_line_after_the_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """Another host than loopback warns first; a port in use ends with one line naming it
    and the options that choose another, and exit code 2, before any engine starts."""
    link = StubLink()
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve(link, "0.0.0.0", port, 2) == 2
    assert not link.opened
    said = capsys.readouterr()
    assert said.out == ""  # no link printed: nothing serves
    assert "warning: serving on 0.0.0.0" in said.err and "ssh -L" in said.err
    assert f"cannot serve on 0.0.0.0:{port}:" in said.err
    assert said.err.rstrip().endswith("(--host and --port choose another)")


def test_an_engine_that_cannot_start_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """When the run's engine cannot be reached or started, serve says why and exits 2."""
    assert serve(StubLink("no engine for runs/stub"), "127.0.0.1", 0, 2) == 2
    assert "minigpt-tui: error: no engine for runs/stub" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--port", "8001"], "go with --serve"),
        (["--host", "0.0.0.0"], "go with --serve"),
        (["--max-tabs", "2"], "go with --serve"),
        (["--serve", "--max-tabs", "0"], "--max-tabs: at least 1"),
        (["--serve", "--port", "65536"], "--port: 0 to 65535"),
    ],
)
def test_web_options_misused(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--host, --port and --max-tabs without --serve, or out of range, are a usage error."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert said in capsys.readouterr().err

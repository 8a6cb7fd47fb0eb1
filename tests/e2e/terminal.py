"""Driving the real program in a real terminal: tmux sessions, their screens, and cleanup."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from tests.e2e.tools import require_tool

PROGRAM = Path(sys.executable).parent / "minigpt-tui"
T = TypeVar("T")


def tmux(session: str, *args: str) -> str:
    """Run a tmux command on the session's own tmux server and return its output.

    Each test's session has a server of its own (named like it): a server that the
    previous test just killed may still be exiting when the next one starts.
    """
    command = ["tmux", "-L", session, "-f", "/dev/null", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


@contextmanager
def terminals(run_dir: Path) -> Iterator[Callable[..., str]]:
    """Open 80x24 tmux sessions (the smallest supported size) with open(command, *env).

    At the end every session's server is killed, and so are any dashboards still showing
    run_dir and its engine.
    Without tmux the test is skipped (failed on CI).
    """
    require_tool("tmux", "tmux")
    opened: list[str] = []

    def open_terminal(command: str, *env: str) -> str:
        """Start a session running command, with NAME=VALUE env; return its name."""
        session = f"minigpt-e2e-{uuid.uuid4().hex[:8]}"
        size = ["-x", "80", "-y", "24"]
        settings = [flag for pair in env for flag in ("-e", pair)]
        tmux(session, "new-session", "-d", "-s", session, *size, *settings, command)
        opened.append(session)
        return session

    try:
        yield open_terminal
    finally:
        sockets = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        for session in opened:
            subprocess.run(["tmux", "-L", session, "kill-server"], capture_output=True)
            (sockets / session).unlink(missing_ok=True)  # tmux leaves it behind
        for pid in dashboards(run_dir):  # one that outlived its terminal must not spin on
            subprocess.run(["kill", "-9", str(pid)], capture_output=True)
        lock = run_dir / "engine.lock"
        if lock.exists() and (engine := lock.read_text().strip()).isdigit():
            subprocess.run(["kill", "-9", engine], capture_output=True)


def keys(session: str, *names: str) -> None:
    """Type keys into the session (tmux key names, or text after "-l")."""
    tmux(session, "send-keys", "-t", session, *names)


def screen(session: str) -> str:
    """What the terminal shows now."""
    return tmux(session, "capture-pane", "-p", "-t", session)


def until(test: Callable[[], T], failure: Callable[[], str], timeout: float = 60.0) -> T:
    """Poll test() until it returns something true, and return that; else fail with failure()."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := test():
            return result
        time.sleep(0.2)
    raise AssertionError(failure())


def wait_for(session: str, test: Callable[[str], bool], timeout: float = 60.0) -> str:
    """Poll the screen until test(screen) holds, and return that screen."""
    return until(
        lambda: shown if test(shown := screen(session)) else "",
        lambda: f"screen never matched; it shows:\n{screen(session)}",
        timeout,
    )


def step_shown(shown: str) -> int:
    """The step counter on screen."""
    for line in shown.splitlines():
        if "step " in line and " / " in line:
            return int(line.split("step ")[1].split(" /")[0].replace(",", ""))
    return -1


def chart_drawn(shown: str) -> bool:
    """Whether the loss chart has drawn a curve (in braille dots)."""
    return any("\u2801" <= c <= "\u28ff" for c in shown)


def dashboards(run_dir: Path) -> list[int]:
    """The pids of the minigpt-tui processes showing run_dir."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process has just gone
            continue
        if str(PROGRAM).encode() in args and str(run_dir).encode() in args:
            found.append(int(cmdline.parent.name))
    return found

"""The real program in a real terminal: minigpt-tui inside tmux, driven by keys."""

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minigpt.config import Config, config_to_toml
from minigpt.config_text import key_line
from minigpt.status import run_status
from tui.config_pane import RUNNING_HEADER

PROGRAM = Path(sys.executable).parent / "minigpt-tui"


def tmux(session: str, *args: str) -> str:
    """Run a tmux command on the session's own tmux server and return its output.

    Each test's session has a server of its own (named like it): a server that the
    previous test just killed may still be exiting when the next one starts.
    """
    assert shutil.which("tmux"), "tmux is needed for the end-to-end tests (apt-get install tmux)"
    command = ["tmux", "-L", session, "-f", "/dev/null", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def terminal(tmp_path: Path, config_file: Path) -> Iterator[tuple[str, Path]]:
    """An 80x24 tmux session (the smallest supported) running minigpt-tui; killed at the end."""
    session = f"minigpt-e2e-{uuid.uuid4().hex[:8]}"
    run_dir = tmp_path / "runs" / "e2e"
    command = f"{PROGRAM} --run-dir {run_dir} --config {config_file}"
    tmux(
        session, "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
        "-e", "TERM=xterm-256color", "-e", f"MINIGPT_CACHE={tmp_path / 'cache'}", command,
    )  # fmt: skip
    yield session, run_dir
    subprocess.run(["tmux", "-L", session, "kill-server"], capture_output=True)
    lock = run_dir / "engine.lock"
    if lock.exists() and (pid := lock.read_text().strip()).isdigit():
        subprocess.run(["kill", "-9", pid], capture_output=True)


def keys(session: str, *names: str) -> None:
    """Type keys into the session (tmux key names, or text after "-l")."""
    tmux(session, "send-keys", "-t", session, *names)


def screen(session: str) -> str:
    """What the terminal shows now."""
    return tmux(session, "capture-pane", "-p", "-t", session)


def wait_for(session: str, test: Callable[[str], bool], timeout: float = 60.0) -> str:
    """Poll the screen until test(screen) holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = screen(session)
        if test(shown):
            return shown
        time.sleep(0.2)
    raise AssertionError(f"screen never matched; it shows:\n{screen(session)}")


def step_shown(shown: str) -> int:
    """The step counter on screen."""
    for line in shown.splitlines():
        if "step " in line and " / " in line:
            return int(line.split("step ")[1].split(" /")[0].replace(",", ""))
    return -1


def applied_step(shown: str) -> int:
    """The step in the Config pane's "Applied at step N:" line."""
    return int(shown.split("Applied at step ")[1].split(":")[0].replace(",", ""))


def test_train_sample_and_quit_in_a_real_terminal(terminal: tuple[str, Path]) -> None:
    """Start with space, watch steps climb, sample a prompt, pause, then quit saving."""
    session, run_dir = terminal
    wait_for(session, lambda s: "─ idle ─" in s)
    keys(session, "Space")
    first = step_shown(wait_for(session, lambda s: "─ running ─" in s and step_shown(s) > 0))
    wait_for(session, lambda s: step_shown(s) > first)
    wait_for(session, lambda s: any("\u2801" <= c <= "\u28ff" for c in s))  # the chart drew
    keys(session, "g")
    wait_for(session, lambda s: "Start/Pause" not in s)  # the prompt has the keys now
    keys(session, "-l", "the cat")
    keys(session, "Enter")
    wait_for(session, lambda s: "tokens/s" in s and "weights" in s)
    keys(session, "Escape")
    time.sleep(0.5)  # a lone escape needs a pause, or escape+space reads as alt+space
    keys(session, "Space")
    wait_for(session, lambda s: "─ paused ─" in s)
    keys(session, "q")
    wait_for(session, lambda s: "Stop and save (s)" in s)
    keys(session, "s")
    deadline = time.monotonic() + 30
    while "alive" in run_status(run_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "not running" in run_status(run_dir)
    assert (run_dir / "model.ckpt").exists()


def test_edit_learning_rate_while_training(terminal: tuple[str, Path]) -> None:
    """c opens the editor; a new learning_rate typed over its line applies at the next step."""
    session, run_dir = terminal
    wait_for(session, lambda s: "─ idle ─" in s)
    keys(session, "Space")
    wait_for(session, lambda s: "─ running ─" in s and step_shown(s) > 0)
    keys(session, "c")
    wait_for(session, lambda s: "^s Apply" in s)  # the editor has the keys
    line = key_line(config_to_toml(Config(), RUNNING_HEADER), "train.learning_rate")
    keys(session, *["Down"] * (line - 1), "Home", "S-End")
    wait_for(session, lambda s: "train.learning_rate: peak learning rate" in s)
    keys(session, "-l", "learning_rate = 0.0005")
    keys(session, "C-s")
    shown = wait_for(session, lambda s: "Applied at step" in s)
    assert "train.learning_rate 0.001 -> 0.0005" in shown.replace("\n", "")
    wait_for(session, lambda s: step_shown(s) > applied_step(shown) + 5)
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    (applied,) = [e for e in events if e["event"] == "config_applied"]
    assert applied["changes"] == {"train.learning_rate": [0.001, 0.0005]}
    later = [e["lr"] for e in events if e["event"] == "step" and e["step"] > applied["step"]]
    assert later and max(later) <= 0.0005

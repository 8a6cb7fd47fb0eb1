"""The real program in a real terminal: minigpt-tui inside tmux, driven by keys."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from minigpt.cli.status import run_status
from minigpt.config import Config, config_to_toml
from minigpt.config_header import RUNNING_HEADER
from minigpt.config_text import key_line
from tests.e2e.terminal import (
    PROGRAM,
    chart_drawn,
    dashboards,
    keys,
    step_shown,
    terminals,
    tmux,
    until,
    wait_for,
)


@pytest.fixture
def terminal(tmp_path: Path, config_file: Path) -> Iterator[tuple[str, Path]]:
    """An 80x24 tmux session running minigpt-tui on a new run; killed with its engine at the end."""
    run_dir = tmp_path / "runs" / "e2e"
    with terminals(run_dir) as open_terminal:
        session = open_terminal(
            f"{PROGRAM} --run-dir {run_dir} --config {config_file}",
            "TERM=xterm-256color",
            f"MINIGPT_CACHE={tmp_path / 'cache'}",
        )
        yield session, run_dir


def title_style(session: str) -> str:
    """The colour codes that start the Inspect pane's title line (its border's colour)."""
    lines = tmux(session, "capture-pane", "-e", "-p", "-t", session).splitlines()
    line = next((line for line in lines if "after token" in line), "")
    return line.split("after token")[0]


def applied_step(shown: str) -> int:
    """The step in the Config pane's "Applied at step N:" line."""
    return int(shown.split("Applied at step ")[1].split(":")[0].replace(",", ""))


@pytest.mark.trains
def test_train_sample_and_quit_in_a_real_terminal(terminal: tuple[str, Path]) -> None:
    """Start with space, watch steps climb, sample a prompt, pause, look at the odds after
    it (and again at another temperature), then quit saving."""
    session, run_dir = terminal
    wait_for(session, lambda s: "─ idle ─" in s)
    keys(session, "Space")
    first = step_shown(wait_for(session, lambda s: "─ running ─" in s and step_shown(s) > 0))
    wait_for(session, lambda s: step_shown(s) > first)
    wait_for(session, chart_drawn)
    keys(session, "g")
    wait_for(session, lambda s: "Start/Pause" not in s)  # the prompt has the keys now
    keys(session, "-l", "the cat")
    keys(session, "Enter")
    # At 80x24 the charts give way: the answer (its note under it; a long answer scrolls
    # its prompt out of view) and the empty prompt box are on screen together. While it
    # streams, its title says "step N weights · T tokens/s · escape cancels" too: wait
    # for the note, or the escape below cancels a slow stream instead of leaving.
    shown = wait_for(
        session, lambda s: "tokens/s" in s and "weights" in s and "escape cancels" not in s
    )
    assert "prompt: enter samples" in shown and "─ running ─" not in shown, shown
    keys(session, "Escape")
    # Wait until the escape has closed the prompt, or escape+space reads as alt+space.
    wait_for(session, lambda s: "Start/Pause" in s)
    keys(session, "Space")
    wait_for(session, lambda s: "─ paused ─" in s)
    keys(session, "i")  # the odds after "the cat": bars with percentages, and the entropy
    shown = wait_for(session, lambda s: "entropy" in s and "temp 1─" in s)
    assert "%" in shown and "softmax" in shown and "the cat" not in shown, shown
    # The pane's keys in the footer say it has the focus: under load, a Tab sent before
    # that moves on from wherever the focus still was.
    wait_for(session, lambda s: "Earlier token" in s)
    pane_has_keys = title_style(session)  # the pane's border shows where the keys are
    keys(session, "Tab", "BSpace", "BSpace", "BSpace")  # into the temperature control
    wait_for(session, lambda s: 'temperature: expected a number, got ""' in s)  # emptied
    keys(session, "-l", "0.5")
    wait_for(session, lambda s: "temp 0.5─" in s)  # a new answer drawn at the new temperature
    keys(session, "Enter")
    # enter gives the keys back to the pane a moment later: a q sent before that is text
    until(
        lambda: title_style(session) == pane_has_keys, lambda: tmux(session, "capture-pane", "-p")
    )
    keys(session, "q")
    wait_for(session, lambda s: "Stop and save (s)" in s)
    keys(session, "s")
    until(lambda: "not running" in run_status(run_dir), lambda: run_status(run_dir), 30)
    assert (run_dir / "model.ckpt").exists()


@pytest.mark.trains
def test_edit_learning_rate_while_training(terminal: tuple[str, Path]) -> None:
    """c opens the editor; a new learning_rate typed over its line applies at the next step."""
    session, run_dir = terminal
    wait_for(session, lambda s: "─ idle ─" in s)
    keys(session, "Space")
    wait_for(session, lambda s: "─ running ─" in s and step_shown(s) > 0)
    keys(session, "c")
    wait_for(session, lambda s: "^s Apply" in s)  # the editor has the keys
    line = key_line(config_to_toml(Config(), RUNNING_HEADER), "train.learning_rate")
    assert line is not None, "the running config sets train.learning_rate"
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


def test_a_terminal_gone_without_sighup_ends_the_dashboard(
    tmp_path: Path, config_file: Path
) -> None:
    """Under `make run`, make keeps the terminal's SIGHUP to itself while it waits for the
    dashboard; the dashboard must still notice its terminal has gone and detach, not spin
    on a dead terminal for ever. Here sh makes the dashboard ignore SIGHUP instead."""
    run_dir = tmp_path / "runs" / "hangup"
    with terminals(run_dir) as open_terminal:
        program = f"{PROGRAM} --run-dir {run_dir} --config {config_file}"
        session = open_terminal(
            f"sh -c 'trap \"\" HUP; {program}'",
            "TERM=xterm-256color",
            f"MINIGPT_CACHE={tmp_path / 'cache'}",
        )
        wait_for(session, lambda s: "─ idle ─" in s)
        assert dashboards(run_dir), f"no minigpt-tui process shows {run_dir}"
        tmux(session, "kill-server")  # the terminal goes; no SIGHUP reaches the dashboard
        until(
            lambda: not dashboards(run_dir),
            lambda: f"minigpt-tui outlived its terminal: pids {dashboards(run_dir)}",
            timeout=20,
        )

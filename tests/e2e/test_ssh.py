"""A real SSH session dropped mid-training: the engine trains on, and a new session sees it all.

sshd runs on 127.0.0.1 for the test only, with keys made for it; minigpt-tui runs on
its far side, inside tmux, as it would for someone working on a remote machine.
"""

import os
import shlex
import signal
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from minigpt.checkpoint import load_checkpoint
from minigpt.events import StepEvent
from minigpt.rundir.layout import RunDir, RunLock
from tests.e2e.sshd import sshd
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

pytestmark = pytest.mark.trains

REPO = Path(__file__).resolve().parents[2]
# sshd gives the far side a clean environment: these carry torch's CPU settings over, so
# under `make test-numerics` the engine there trains with the arithmetic asked for.
CARRIED = ("ATEN_CPU_CAPABILITY", "OMP_WAIT_POLICY")


@pytest.fixture
def ssh(tmp_path: Path) -> Iterator[list[str]]:
    """A real sshd on a free 127.0.0.1 port (tests/e2e/sshd.py); killed at the end.

    Yields the ssh command line (forced tty, no questions asked) up to the remote command.
    """
    with sshd(tmp_path / "ssh") as options:
        yield ["ssh", "-tt", *options, "127.0.0.1"]


def running(pid: int) -> bool:
    """Whether pid is a live process (not a zombie: nobody may reap an orphan here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def steps_logged(run_dir: Path) -> list[int | None]:
    """The steps in the run's metrics.jsonl, in order."""
    return [e.step for e in RunDir(run_dir).read_metrics() if isinstance(e, StepEvent)]


def field(shown: str, name: str) -> str:
    """The value after a stats panel label ("best val", "saved") on screen; "" when absent."""
    for line in shown.splitlines():
        if f"{name} " in line:
            return line.split(f"{name} ", 1)[1].split("│")[0].strip()
    return ""


def chart_steps(shown: str) -> list[str]:
    """The step labels under the loss chart; they start at 0 only when its curve does."""
    lines = shown.splitlines()
    for axis, labels in pairwise(lines):
        if "└" in axis:
            return labels.split("│")[1].split()
    return []


def test_dropped_ssh_session_loses_nothing(
    ssh: list[str], tmp_path: Path, config_file: Path
) -> None:
    """Kill the ssh client mid-training; the engine trains on; a new session shows the whole run."""
    run_dir = tmp_path / "runs" / "ssh"
    kept = [f"{name}={os.environ[name]}" for name in CARRIED if name in os.environ]
    cache = f"MINIGPT_CACHE={tmp_path / 'cache'}"
    remote = f"cd {REPO} && env TERM=xterm-256color {cache} {' '.join(kept)} {PROGRAM}"
    with terminals(run_dir) as open_terminal:
        start = f"{remote} --run-dir {run_dir} --config {config_file}"
        first = open_terminal("exec " + shlex.join([*ssh, start]))  # the pane's process: ssh
        wait_for(first, lambda s: "─ idle ─" in s)
        keys(first, "Space")
        shown = wait_for(
            first, lambda s: "─ running ─" in s and field(s, "best val") not in ("", "-")
        )
        before = step_shown(shown)
        engine = RunLock(RunDir(run_dir)).holder()
        assert engine and running(engine), f"no live engine in {run_dir / 'engine.lock'}"

        assert dashboards(run_dir), f"no minigpt-tui process shows {run_dir}"
        (client,) = tmux(first, "list-panes", "-t", first, "-F", "#{pane_pid}").split()
        command = Path(f"/proc/{client}/comm").read_text().strip()
        assert command == "ssh", f"the pane runs {command}, not ssh"
        os.kill(int(client), signal.SIGKILL)
        until(
            lambda: not dashboards(run_dir),
            lambda: f"the remote minigpt-tui outlived its session: pids {dashboards(run_dir)}",
            timeout=30,
        )
        logged = steps_logged(run_dir)
        until(
            lambda: len(steps_logged(run_dir)) > len(logged) + 10,
            lambda: f"training stopped with the session at step {steps_logged(run_dir)[-1]}",
            timeout=30,
        )
        alive = running(engine) and RunLock(RunDir(run_dir)).holder() == engine
        assert alive, f"engine pid {engine} died with the session"

        second = open_terminal("exec " + shlex.join([*ssh, f"{remote} --attach {run_dir}"]))
        shown = wait_for(second, lambda s: step_shown(s) > before and chart_drawn(s))
        assert "─ running ─" in shown, f"the engine is not training:\n{shown}"
        assert chart_steps(shown)[:1] == ["0"], f"the chart lacks the steps before:\n{shown}"
        assert field(shown, "best val") not in ("", "-"), f"no eval history shown:\n{shown}"
        assert field(shown, "saved") not in ("", "step -"), f"no checkpoint shown:\n{shown}"
        seen = step_shown(shown)

        keys(second, "q")
        wait_for(second, lambda s: "Stop and save (s)" in s)
        keys(second, "s")
        until(lambda: not running(engine), lambda: f"engine pid {engine} never stopped", 30)
        saved = load_checkpoint(run_dir / "model.ckpt")
        assert saved["step"] >= seen, f"checkpoint at step {saved['step']}, screen showed {seen}"
        logged = steps_logged(run_dir)
        gaps = sorted(set(range(1, saved["step"] + 1)) - set(logged))
        assert not gaps, f"metrics.jsonl lacks steps {gaps[:20]}... of 1..{saved['step']}"

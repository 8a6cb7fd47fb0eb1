"""`minigpt status`: one line per run, whether or not an engine is serving it.

A live engine is asked directly (its hello carries state and step); a run
with no engine is read from its metrics.jsonl and config.toml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minigpt.client import Client
from minigpt.config import load_config
from minigpt.display import number
from minigpt.errors import MiniGPTError
from minigpt.history import History
from minigpt.rundir import RunDir, RunLock


def run_status(path: Path) -> str:
    """A one-line summary: folder, alive (pid) or not, state, step/max_iters, val losses."""
    run_dir = RunDir(path)
    history = History.read(run_dir)
    last_step = history.last_step or 0
    pid = RunLock(run_dir).holder()
    if pid is not None:
        alive = f"alive (pid {pid})"
        try:
            client = Client.connect(path, timeout=3.0)
        except MiniGPTError:
            state, step, max_iters = "not answering", last_step, "?"
        else:
            hello = client.hello
            client.close()
            state, step = hello.state, hello.step
            max_iters = _max_iters(hello.config)
    else:
        alive = "not running"
        step = last_step
        try:
            max_iters = load_config(run_dir.config).train.max_iters
        except MiniGPTError:
            max_iters = "?"
        state = "finished" if isinstance(max_iters, int) and step >= max_iters else "stopped"
    losses = ""
    if history.evals:
        last = history.evals[-1]
        losses = f"  val {number(last.val_loss, '.4f')}  best {number(last.best_val_loss, '.4f')}"
    skipped = f"  ({history.skipped} unreadable lines skipped)" if history.skipped else ""
    return f"{path}  {alive}  {state}  step {number(step, 'd')}/{max_iters}{losses}{skipped}"


def _max_iters(config: dict[str, Any]) -> int | str:
    """train.max_iters as a hello's config states it, or "?" when it does not (a hello
    is read as received: its config may be anything)."""
    train = config.get("train")
    max_iters = train.get("max_iters") if isinstance(train, dict) else None
    return max_iters if isinstance(max_iters, int) and not isinstance(max_iters, bool) else "?"

"""`minigpt status`: one line per run, whether or not an engine is serving it, in well under a
second however long the run (and without torch).

A live engine is asked directly (its hello carries state and step); a run with no engine is
read from its index of metrics.jsonl (history_index.py) and its config.toml. A run without
a usable index (one from before the index existed, or whose index was deleted) is read from
the end of metrics.jsonl instead: a glance never indexes a whole run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minigpt.config import load_config
from minigpt.display import number
from minigpt.errors import MiniGPTError
from minigpt.events import EvalEvent, StepEvent
from minigpt.rundir.history_index import HistoryIndex
from minigpt.rundir.journal import unreadable
from minigpt.rundir.layout import RunDir, RunLock
from minigpt.service.client import Client

UNINDEXED_BYTES = 16 << 20  # more lines than this waiting in metrics.jsonl: read its end instead
GLANCED_LINES = 5000  # the lines read from the end of a metrics.jsonl without an index


@dataclass
class Glance:
    """How far a run trained, its latest evaluation, and how many lines could not be read."""

    last_step: int | None = None
    last_eval: EvalEvent | None = None
    skipped: int = 0

    @classmethod
    def of(cls, run_dir: RunDir) -> Glance:
        """From the run's index when it has one that is nearly up to date, else from the
        end of its metrics.jsonl."""
        index = HistoryIndex.existing(run_dir)
        if index is not None:
            try:
                if index.in_memory is None and index.sync(limit=UNINDEXED_BYTES):
                    facts = index.facts()
                    return cls(facts.max_step, index.last_eval(), facts.skipped.count)
            finally:
                index.close()
        glance = cls()
        reading = run_dir.read_metrics(last=GLANCED_LINES)
        for event in reading:
            if isinstance(event, StepEvent) and event.step is not None:
                glance.last_step = max(event.step, glance.last_step or event.step)
            elif isinstance(event, EvalEvent):
                glance.last_eval = event
        glance.skipped = reading.skipped.count
        return glance


def run_status(path: Path) -> str:
    """A one-line summary: folder, alive (pid) or not, state, step/max_iters, val losses."""
    run_dir = RunDir(path)
    glance = Glance.of(run_dir)
    last_step = glance.last_step or 0
    pid = RunLock(run_dir).holder()
    step: int | None
    max_iters: int | str
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
    if glance.last_eval is not None:
        last = glance.last_eval
        losses = f"  val {number(last.val_loss, '.4f')}  best {number(last.best_val_loss, '.4f')}"
    skipped = f"  ({unreadable(glance.skipped)} skipped)" if glance.skipped else ""
    return f"{path}  {alive}  {state}  step {number(step, 'd')}/{max_iters}{losses}{skipped}"


def _max_iters(config: dict[str, Any]) -> int | str:
    """train.max_iters as a hello's config states it, or "?" when it does not (a hello
    is read as received: its config may be anything)."""
    train = config.get("train")
    max_iters = train.get("max_iters") if isinstance(train, dict) else None
    return max_iters if isinstance(max_iters, int) and not isinstance(max_iters, bool) else "?"

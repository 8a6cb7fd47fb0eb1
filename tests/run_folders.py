"""Run folders written directly, no training: a config.toml and a metrics.jsonl of a few lines.

Each eval follows a step that states its training time, as the engine writes them; an eval
line itself carries no training time (as engines before it did), so readers derive it.
"""

from __future__ import annotations

import json
from pathlib import Path

from minigpt.config import Config
from minigpt.events import EvalEvent, Event, StepEvent
from minigpt.rundir.layout import RunDir

EVERY = 10  # steps between evals
SECONDS = 1.5  # training time of EVERY steps
TOKENS = 64  # tokens per step


def finished_run(folder: Path, losses: list[float | None], config: Config | None = None) -> Path:
    """A run folder with this config.toml (none without one) and an eval every EVERY steps,
    from step 0, with these train and val losses (None: not a number)."""
    run_dir = RunDir(folder)
    run_dir.create()
    if config is not None:
        run_dir.write_config(config)
    events: list[Event] = []
    for i, loss in enumerate(losses):
        step = EVERY * i
        events.append(StepEvent(step, 4.0, 1e-3, 5000.0, 12.5, elapsed=SECONDS * i))
        events.append(EvalEvent(step, loss, loss, None, tokens_seen=TOKENS * step))
    lines = [json.dumps(event.to_dict()) + "\n" for event in events]
    (folder / "metrics.jsonl").write_text("".join(lines), encoding="utf-8")
    return folder

"""A run's history as typed events: what its metrics.jsonl and samples.jsonl hold.

Every reader of a run's history goes through `History`: the engine (whose
hello lets a dashboard redraw everything), `minigpt status`, and the
dashboard's compare picker. Lines are decoded into the protocol's events (see
events.py); a line that is no event this version knows, or an event without a
step, is skipped and counted rather than trusted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from minigpt.events import (
    AlertEvent,
    CheckpointEvent,
    ConfigAppliedEvent,
    EvalEvent,
    Event,
    SampleDoneEvent,
    StepEvent,
    UnknownEvent,
    decode,
)
from minigpt.journal import read_lines
from minigpt.rundir import RunDir

STEPPED = (
    StepEvent,
    EvalEvent,
    ConfigAppliedEvent,
    CheckpointEvent,
    AlertEvent,
)  # useless without a step
RECENT_SAMPLES = 100  # the latest completions kept (samples.jsonl keeps them all)


@dataclass
class History:
    """Step losses, evaluations, alerts, config changes, checkpoints and completions, in order."""

    steps: list[tuple[int, float | None, float | None]] = field(default_factory=list)
    evals: list[EvalEvent] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    config_changes: list[ConfigAppliedEvent] = field(default_factory=list)
    last_checkpoint: CheckpointEvent | None = None
    train_seconds: float = 0.0  # training time so far, across resumes
    samples: deque[SampleDoneEvent] = field(default_factory=lambda: deque(maxlen=RECENT_SAMPLES))
    skipped: int = 0  # lines read that were not usable events
    notes: list[str] = field(default_factory=list)  # one line per file with skipped lines

    @classmethod
    def read(cls, run_dir: RunDir) -> History:
        """The history on disk: metrics.jsonl, then samples.jsonl."""
        history = cls()
        for path, kinds in ((run_dir.metrics, STEPPED), (run_dir.samples, (SampleDoneEvent,))):
            skipped = [
                number
                for number, record in read_lines(path)
                if not (isinstance(event := decode(record), kinds) and history.add(event))
            ]
            if skipped:
                history.skipped += len(skipped)
                history.notes.append(
                    f"{path}: {len(skipped)} unreadable line{'s' * (len(skipped) > 1)} "
                    f"skipped (the first is line {skipped[0]})"
                )
        return history

    def add(self, event: Event) -> bool:
        """Fold in one event; False for one this history has no place for. (A file holds
        only its own kinds: anything else in it is skipped too.)"""
        if isinstance(event, UnknownEvent) or (isinstance(event, STEPPED) and event.step is None):
            return False
        if isinstance(event, StepEvent):
            self.steps.append((event.step, event.loss, event.lr))
            if event.elapsed is not None:
                self.train_seconds = event.elapsed
        elif isinstance(event, EvalEvent):
            self.evals.append(event)
        elif isinstance(event, AlertEvent):
            self.alerts.append(event)
        elif isinstance(event, ConfigAppliedEvent):
            self.config_changes.append(event)
        elif isinstance(event, CheckpointEvent):
            if event.path.endswith("model.ckpt"):
                self.last_checkpoint = event
        elif isinstance(event, SampleDoneEvent):
            self.samples.append(event)
        return True

    @property
    def last_step(self) -> int | None:
        """The furthest step trained (an odd line appended out of order does not set it
        back), None before the first."""
        return max(step for step, _, _ in self.steps) if self.steps else None

    def val_curve(self) -> list[tuple[int, float]]:
        """(step, val loss) of every evaluation with a number for it."""
        return [(e.step, e.val_loss) for e in self.evals if e.val_loss is not None]  # type: ignore[misc]

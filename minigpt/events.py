"""What a training run reports, as typed events.

Each event becomes one JSON object with an "event" name and a "time", the same
shape whether it is appended to a run's metrics.jsonl, printed by the CLI, or
streamed to a dashboard over the engine's socket.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Event:
    """Base event: subclasses set `name` and add their fields."""

    name: ClassVar[str] = "event"
    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object for this event; non-finite floats become null."""
        body = {f.name: _finite(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {"event": self.name, **body}


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: report them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class StepEvent(Event):
    """One optimizer step finished."""

    name: ClassVar[str] = "step"
    step: int
    loss: float
    lr: float
    tokens_per_sec: float
    ms_per_step: float


@dataclass
class EvalEvent(Event):
    """estimate_loss ran at this step."""

    name: ClassVar[str] = "eval"
    step: int
    train_loss: float
    val_loss: float
    best_val_loss: float


@dataclass
class CheckpointEvent(Event):
    """A checkpoint file was written."""

    name: ClassVar[str] = "checkpoint"
    path: str
    step: int


@dataclass
class LogEvent(Event):
    """A human-readable message from the engine."""

    name: ClassVar[str] = "log"
    level: str
    message: str

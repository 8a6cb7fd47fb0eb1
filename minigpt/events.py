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
    elapsed: float  # seconds spent training this run so far, across resumes


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


@dataclass
class HelloEvent(Event):
    """Sent to each client as it connects: who the engine is and what happened so far."""

    name: ClassVar[str] = "hello"
    protocol: int
    pid: int
    run_dir: str
    config: dict[str, Any]
    state: str
    step: int
    model: dict[str, Any]
    history: dict[str, Any]


@dataclass
class StateEvent(Event):
    """The engine's state changed: idle, running, paused, finished or failed."""

    name: ClassVar[str] = "state"
    state: str
    reason: str = ""


@dataclass
class SampleTokenEvent(Event):
    """A piece of streamed completion text."""

    name: ClassVar[str] = "sample_token"
    id: str
    text: str
    tokens_per_sec: float
    step: int


@dataclass
class SampleDoneEvent(Event):
    """A completion finished, was cancelled, or failed."""

    name: ClassVar[str] = "sample_done"
    id: str
    prompt: str
    text: str
    tokens: int
    tokens_per_sec: float
    step: int
    prompt_tokens: int
    prompt_cropped: int
    settings: dict[str, Any]
    cancelled: bool = False
    at_eval: bool = False  # sampled by the engine at an eval, not asked for by a client


@dataclass
class ConfigAppliedEvent(Event):
    """A configuration change took effect at this step."""

    name: ClassVar[str] = "config_applied"
    step: int
    changes: dict[str, list[Any]]


@dataclass
class ConfigRejectedEvent(Event):
    """A configuration change was valid but needs a restart, so nothing changed."""

    name: ClassVar[str] = "config_rejected"
    needs_restart: list[str]
    reason: str
    id: str | None = None


@dataclass
class ErrorEvent(Event):
    """Something went wrong; fatal means the engine is exiting."""

    name: ClassVar[str] = "error"
    message: str
    fatal: bool = False
    id: str | None = None

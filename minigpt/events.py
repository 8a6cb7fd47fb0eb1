"""What a training run reports, as typed events, both ways over the wire.

Each event becomes one JSON object with an "event" name and a "time", the same
shape whether it is appended to a run's metrics.jsonl, printed by the CLI, or
streamed to a dashboard over the engine's socket. `decode` turns such an object
(or a line of JSON) back into its class, and never raises: a reader cannot
trust what it reads (an older engine, a hand-edited file, a torn line), so a
field that is missing or of the wrong type gets its empty value (None for a
number, "" for text), unknown fields are ignored, and an unknown or unreadable
event comes back as an `UnknownEvent` that readers pass on or log.

Each class also declares who hears it (`audience`) and, for a reply, whether the
asker hears more of its command after it (`ends_request`): the one rule for
replies, read by the engine (`Engine._answer`), the dashboard (tui/replies.py)
and the tests' fake engine (tests/tui/scripted.py).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
import time
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Union

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class Audience(enum.Enum):
    """Who hears an event the engine sends."""

    EVERYONE = "everyone"  # news for every client, answering no one: steps, evals, states
    ASKER = "asker"  # a reply to one command, for its sender alone (everyone's when it has none)
    # Every client's news, carrying the id of the command it answers: that command's
    # sender takes it as its answer, the others as news.
    EVERYONE_AND_ASKER = "everyone and asker"


@dataclass
class Event:
    """Base event: subclasses set `name` and add their fields; replies also set `audience`
    (and `ends_request` when more replies to the same command follow) and carry an `id`."""

    name: ClassVar[str] = "event"
    audience: ClassVar[Audience] = Audience.EVERYONE
    ends_request: ClassVar[bool] = True  # False: more replies to the same command follow
    time: float = field(default_factory=time.time, kw_only=True, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object for this event; non-finite floats become null."""
        return {"event": self.name, **_fields_to_json(self)}


def _fields_to_json(record: Any) -> dict[str, Any]:
    """A dataclass's fields as JSON values."""
    return {f.name: _to_json(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _to_json(value: Any) -> Any:
    """A field's value as JSON: nested events and records as objects; NaN and inf as null."""
    if isinstance(value, Event):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields_to_json(value)
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class StepEvent(Event):
    """One optimizer step finished."""

    name: ClassVar[str] = "step"
    step: int | None
    loss: float | None
    lr: float | None
    tokens_per_sec: float | None
    ms_per_step: float | None
    elapsed: float | None  # seconds spent training this run so far, across resumes
    grad_norm: float | None = None  # total gradient norm before clipping (None: no clipping)
    clipped: bool | None = None  # whether grad_norm exceeded train.grad_clip


@dataclass
class EvalEvent(Event):
    """estimate_loss ran at this step."""

    name: ClassVar[str] = "eval"
    step: int | None
    train_loss: float | None
    val_loss: float | None
    best_val_loss: float | None
    # Training health (None from engines that predate it): see health.py.
    train_bpb: float | None = None  # bits per byte of text: comparable across tokenizers
    val_bpb: float | None = None
    tokens_seen: int | None = None  # training tokens read so far, across resumes
    epochs: float | None = None  # tokens_seen / tokens in the train split
    update_ratio: list[float] | None = None  # per block: std(last update) / std(weights)
    weight_norm: list[float] | None = None  # per block: L2 norm of its weight matrices
    elapsed: float | None = None  # seconds spent training by this eval, across resumes (a step's)


@dataclass
class AlertEvent(Event):
    """Training looks unhealthy: kind is init_loss, diverged, too_high_lr, weights_too_large,
    grad_spike, overfitting or memorising (see alerts.py)."""

    name: ClassVar[str] = "alert"
    kind: str
    step: int | None
    message: str  # what it means and what to try, in plain words


@dataclass
class CheckpointEvent(Event):
    """A checkpoint file was written."""

    name: ClassVar[str] = "checkpoint"
    path: str
    step: int | None


@dataclass
class LogEvent(Event):
    """A human-readable message from the engine."""

    name: ClassVar[str] = "log"
    level: str
    message: str


# The engine's states (StateEvent.state), and its reason for pausing (or, under
# `minigpt train`, failing) when the loss diverged.
IDLE, RUNNING, PAUSED, FINISHED, FAILED = "idle", "running", "paused", "finished", "failed"
DIVERGED = "loss diverged"


@dataclass
class StateEvent(Event):
    """The engine's state changed: idle, running, paused, finished or failed."""

    name: ClassVar[str] = "state"
    state: str
    reason: str = ""


@dataclass
class NoticeEvent(Event):
    """Something [notify] asks to be told of (minigpt/service/notices.py): kind is finished,
    failed, diverged, alert, stalled or target. Also what the webhook is sent."""

    name: ClassVar[str] = "notice"
    kind: str
    title: str  # one line, naming the run
    message: str  # what happened, in plain words
    step: int | None


@dataclass
class SampleTokenEvent(Event):
    """A piece of streamed completion text."""

    name: ClassVar[str] = "sample_token"
    audience: ClassVar[Audience] = Audience.EVERYONE_AND_ASKER
    ends_request: ClassVar[bool] = False  # the completion goes on, up to its sample_done
    id: str
    text: str
    tokens_per_sec: float | None
    step: int | None
    # text as (piece, probability the model gave the tokens behind it when drawing them);
    # the pieces concatenate to text. Empty from engines that predate it.
    spans: list[tuple[str, float | None]] = field(default_factory=list)


@dataclass
class SampleDoneEvent(Event):
    """A completion finished, was cancelled, or failed."""

    name: ClassVar[str] = "sample_done"
    audience: ClassVar[Audience] = Audience.EVERYONE_AND_ASKER
    id: str
    prompt: str
    text: str
    tokens: int | None
    tokens_per_sec: float | None
    step: int | None
    prompt_tokens: int | None
    prompt_cropped: int | None
    settings: dict[str, Any]
    cancelled: bool = False
    at_eval: bool = False  # sampled by the engine at an eval, not asked for by a client
    spans: list[tuple[str, float | None]] = field(default_factory=list)  # text, as above


@dataclass
class ConfigAppliedEvent(Event):
    """A configuration change took effect at this step."""

    name: ClassVar[str] = "config_applied"
    audience: ClassVar[Audience] = Audience.EVERYONE_AND_ASKER
    step: int | None
    changes: dict[str, list[Any]]
    id: str | None = None  # sent to clients: the set command's; not kept in metrics.jsonl


@dataclass
class ConfigRejectedEvent(Event):
    """A configuration change was valid but needs a restart, so nothing changed."""

    name: ClassVar[str] = "config_rejected"
    audience: ClassVar[Audience] = Audience.ASKER
    needs_restart: list[str]
    reason: str
    id: str | None = None


@dataclass
class ErrorEvent(Event):
    """Something went wrong; fatal means the engine is exiting."""

    name: ClassVar[str] = "error"
    audience: ClassVar[Audience] = Audience.ASKER
    message: str
    fatal: bool = False
    id: str | None = None


@dataclass
class ModelFacts:
    """What a hello says about the model: size, vocabulary, where it runs."""

    params: int | None
    vocab_size: int | None
    tokenizer: str
    corpus: str
    corpus_tokens: int | None
    device: str
    dtype: str
    tokens_per_step: int | None


@dataclass
class HelloHistory:
    """What happened in the run so far, enough for a new client to redraw everything."""

    metrics: str
    steps: list[tuple[int | None, float | None, float | None]]  # (step, loss, lr), thinned
    evals: list[EvalEvent]
    config_changes: list[ConfigAppliedEvent]
    last_checkpoint: CheckpointEvent | None
    best_val_loss: float | None
    train_seconds: float | None
    samples: list[SampleDoneEvent]
    skipped: list[str] = field(default_factory=list)  # what could not be read, a line per file
    alerts: list[AlertEvent] = field(default_factory=list)


@dataclass
class HelloEvent(Event):
    """Sent to each client as it connects: who the engine is and what happened so far."""

    name: ClassVar[str] = "hello"
    protocol: int | None
    pid: int | None
    run_dir: str
    config: dict[str, Any]
    state: str
    step: int | None
    model: ModelFacts
    history: HelloHistory


@dataclass
class Candidate:
    """One possible next token and its probability after each of generate's steps."""

    token: str  # readable: a space as "␣", a newline as "↵", a stray byte as "<0xE4>"
    id: int | None
    prob: float | None  # softmax of the raw logits
    prob_temperature: float | None  # after dividing the logits by the temperature
    prob_top_k: float | None  # then keeping the top_k likeliest, renormalised
    prob_top_p: float | None  # then keeping the nucleus reaching top_p: what is drawn from


@dataclass
class LensGuess:
    """One of a block's likeliest next tokens in the logit lens."""

    token: str  # readable, as a Candidate's
    id: int | None
    prob: float | None


@dataclass
class InspectionEvent(Event):
    """The odds of the token after prompt_tokens[:position + 1], and how they came about:
    the answer to an `inspect` command (see minigpt/inspection.py)."""

    name: ClassVar[str] = "inspection"
    audience: ClassVar[Audience] = Audience.ASKER
    step: int | None  # the training step of the weights inspected
    prompt_tokens: list[str]  # readable, after cropping
    prompt_ids: list[int]
    position: int | None  # 0 <= position < len(prompt_ids)
    cropped: int | None  # tokens cut from the front of the prompt to fit the context
    next_token: str | None  # the prompt's own token after position; None at its end
    next_id: int | None
    temperature: float | None
    top_k: int | None
    top_p: float | None
    entropy_bits: float | None  # of the temperature-adjusted distribution
    entropy_bits_raw: float | None  # of the raw softmax
    candidates: list[Candidate]
    attention: list[list[list[list[float]]]] | None  # [block][head][query][key]
    attention_mean: list[list[list[float]]] | None  # [block][query][key], mean over heads
    id: str | None = None  # the inspect command's
    # The logit lens: each block's own likeliest next tokens, as the output layer would read
    # its residual stream (minigpt/learned/lens.py); the last block's are the model's odds.
    lens: list[list[LensGuess]] = field(default_factory=list)


@dataclass
class HeadRoles:
    """One attention head's roles at an eval (minigpt/learned/heads.py)."""

    previous_token: float | None  # attention paid to the token just before
    induction: float | None  # attention paid to the token after an earlier copy's match
    entropy: float | None  # bits: 0 looks at one token


@dataclass
class MapPoints:
    """The embedding map: the tokens shown and their places (minigpt/learned/embedding_map.py)."""

    ids: list[int | None]
    x: list[float | None]
    y: list[float | None]


@dataclass
class LearnedEvent(Event):
    """What the model knows at an eval, measured on it then (minigpt/learned/views.py): kept in
    the run's learned/ folder and broadcast as it is kept. Token ids index the run's vocab
    in learned/probe.json; probe_loss has an entry per probe token, guess_ids and
    guess_probs GUESSES entries per probe token (its likeliest next tokens, likeliest first:
    flat, as lists of plain numbers decode fast)."""

    name: ClassVar[str] = "learned"
    GUESSES: ClassVar[int] = 5
    step: int | None
    probe_loss: list[float | None]  # None for the first token, which has no context
    guess_ids: list[int | None]
    guess_probs: list[float | None]
    position_loss: list[float | None]  # the val loss at each position of the context
    context_gain: float | None  # the first quarter of positions' mean loss minus the last's
    heads: list[list[HeadRoles]]  # [block][head]
    embedding_map: MapPoints


@dataclass
class UnknownEvent(Event):
    """An event this version does not know, or a line that is no event at all."""

    name: ClassVar[str] = "unknown"
    event: str  # the name it came with ("" when it had none)
    data: Any  # what was received, as decoded JSON or the raw text


EVENTS: dict[str, type[Event]] = {
    cls.name: cls
    for cls in (
        StepEvent,
        EvalEvent,
        AlertEvent,
        CheckpointEvent,
        LogEvent,
        StateEvent,
        NoticeEvent,
        SampleTokenEvent,
        SampleDoneEvent,
        ConfigAppliedEvent,
        ConfigRejectedEvent,
        ErrorEvent,
        HelloEvent,
        InspectionEvent,
        LearnedEvent,
    )
}
T = TypeVar("T", bound="DataclassInstance")


def decode(data: bytes | str | dict[str, Any] | Any) -> Event:
    """The event a JSON line (or its parsed object) stands for; never raises."""
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
            return UnknownEvent(event="", data=text[:200])
    if not isinstance(data, dict):
        return UnknownEvent(event="", data=data)
    name = data.get("event")
    cls = EVENTS.get(name) if isinstance(name, str) else None
    if cls is None:
        return UnknownEvent(event=name if isinstance(name, str) else "", data=data)
    return _record(cls, data)


def _record(cls: type[T], data: dict[str, Any]) -> T:
    """A dataclass from a JSON object, each field coerced to its declared type."""
    hints = _hints(cls)
    values = {
        f.name: _coerce(hints[f.name], data.get(f.name, _MISSING), f)
        for f in dataclasses.fields(cls)
        if f.init and not f.kw_only
    }
    record = cls(**values)
    stamp = data.get("time")
    if isinstance(record, Event) and isinstance(stamp, (int, float)) and _fits(float, stamp):
        record.time = float(stamp)
    return record


_MISSING = object()


@cache
def _hints(cls: Any) -> dict[str, Any]:
    """A dataclass's field types, resolved once."""
    return typing.get_type_hints(cls)


def _coerce(kind: Any, value: Any, spec: dataclasses.Field[Any] | None = None) -> Any:
    """value as `kind` when it fits (an int may stand for a float, a whole float for an
    int); otherwise the field's default, else the type's empty value (None for numbers)."""
    if typing.get_origin(kind) in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return next((_coerce(o, value) for o in options if _fits(o, value)), None)
    if not _fits(kind, value):
        if spec is not None and spec.default is not dataclasses.MISSING:
            return spec.default
        return _empty(kind)
    if kind is float or kind is int:
        return kind(value)
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind) or (Any,)
        if _optional(item):  # every entry keeps its place, as None where it does not fit
            return [_coerce(item, entry) for entry in value]
        return [_coerce(item, entry) for entry in value if _fits(item, entry)]
    if typing.get_origin(kind) is dict:
        _, item = typing.get_args(kind) or (str, Any)
        return {key: _coerce(item, entry) for key, entry in value.items() if _fits(item, entry)}
    if typing.get_origin(kind) is tuple:
        slots = typing.get_args(kind)
        padded = [*value, *(None,) * len(slots)]  # a short entry reads as missing values
        return tuple(_coerce(slot, padded[i]) for i, slot in enumerate(slots))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _record(kind, value)
    return _to_json(value) if kind is Any else value  # NaN as null, as the wire would have it


def _optional(kind: Any) -> bool:
    """Whether kind is a union with None (`float | None`)."""
    union = typing.get_origin(kind) in (Union, types.UnionType)
    return union and type(None) in typing.get_args(kind)


def _fits(kind: Any, value: Any) -> bool:
    """Whether a JSON value can stand for a field of this type."""
    if kind is Any:
        return value is not _MISSING
    if typing.get_origin(kind) in (Union, types.UnionType):
        return (value is None and _optional(kind)) or any(
            _fits(option, value) for option in typing.get_args(kind)
        )
    if isinstance(value, bool):
        return kind is bool
    if kind is float:  # finite, and within float's range (a JSON int may be any size)
        return isinstance(value, (int, float)) and abs(value) <= sys.float_info.max
    if kind is int:
        return isinstance(value, int) or (
            isinstance(value, float) and math.isfinite(value) and value.is_integer()
        )
    origin = typing.get_origin(kind) or kind
    if dataclasses.is_dataclass(kind):
        return isinstance(value, dict)
    if origin is tuple:
        return isinstance(value, list)
    return isinstance(origin, type) and isinstance(value, origin)


def _empty(kind: Any) -> Any:
    """What a missing field of this type reads as."""
    if kind is str:
        return ""
    if kind is bool:
        return False
    origin = typing.get_origin(kind)
    if origin is list:
        return []
    if origin is dict or kind is dict:
        return {}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _record(kind, {})
    return None

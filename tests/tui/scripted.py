"""A scripted link: the dashboard driven by events a test writes or replays, no engine.

`ScriptedLink` stands where `tui.link.EngineLink` does. What a test `feed`s
arrives as if from the engine's socket: as wire dicts (so a test may feed
hostile JSON), decoded into events as `minigpt.service.client.Client` decodes them.
Every command the dashboard sends is kept in `sent`. With a `FakeEngine` as
its responder the link answers commands the way an engine does (states,
samples, config changes), so the keys can be tested in milliseconds; the real
engine is left to a few integration tests. The link addresses the responder's events
as the engine does, by the rule each event's class declares (`Event.audience`).
"""

from __future__ import annotations

import itertools
import json
import queue
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from minigpt.config import Config, apply_values, changes, config_to_dict, restart_keys
from minigpt.errors import EngineError, MiniGPTError, UnseenCharactersError
from minigpt.estimate import footprint
from minigpt.events import (
    EVENTS,
    Audience,
    CheckpointEvent,
    ConfigAppliedEvent,
    EvalEvent,
    Event,
    HelloEvent,
    HelloHistory,
    ModelFacts,
    SampleDoneEvent,
    SampleTokenEvent,
    StateEvent,
    StepEvent,
    decode,
)
from minigpt.service.protocol import at_max_iters, failure_event, restart_refused
from tests.tiny import tiny_config
from tui.link import Link, make_next_run

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded"
# The probabilities the fake engine gives the words of its completions, in turn: one
# for each confidence colour, and a sure one.
FAKE_CONFIDENCE = (0.05, 0.2, 0.4, 0.6, 0.95)
Wire = dict[str, Any]


def recording(name: str) -> list[Wire]:
    """The events a real engine sent in one recorded session (tests/data/recorded/NAME.jsonl)."""
    lines = (RECORDED / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def hello(state: str = "idle", step: int = 0, config: Config | None = None, **history: Any) -> Wire:
    """A hello as an engine of the tiny test config would send it."""
    config = config or tiny_config(**{"train.max_iters": 100})
    facts = ModelFacts(
        params=12_345,
        vocab_size=20,
        tokenizer="char",
        corpus="corpus.txt",
        corpus_tokens=12_000,
        device="cpu",
        dtype="float32",
        tokens_per_step=64,
    )
    past: dict[str, Any] = {
        "metrics": "",
        "steps": [],
        "evals": [],
        "config_changes": [],
        "last_checkpoint": None,
        "best_val_loss": None,
        "train_seconds": 0.0,
        "samples": [],
    }
    event = HelloEvent(
        protocol=1,
        pid=4242,
        run_dir="runs/scripted",
        config=config_to_dict(config),
        state=state,
        step=step,
        model=facts,
        history=HelloHistory(**(past | history)),
    )
    return event.to_dict()


def addressed(wire: Wire, request: str) -> Wire:
    """An event sent on a command, as the engine sends it: one that answers an asker carries
    the command's id; news goes out as it is."""
    if EVENTS[wire["event"]].audience is Audience.EVERYONE:
        return wire
    return wire | {"id": request}


def step(n: int, loss: float | None = 2.5, lr: float = 1e-3) -> Wire:
    """A step event."""
    return StepEvent(n, loss, lr, tokens_per_sec=5000.0, ms_per_step=12.5, elapsed=n / 80).to_dict()


def evaluation(n: int, val_loss: float | None = 2.4, train_loss: float | None = 2.3) -> Wire:
    """An eval event."""
    return EvalEvent(n, train_loss, val_loss, best_val_loss=val_loss).to_dict()


class ScriptedClient:
    """What `EngineLink.open` returns: a hello, then whatever the test feeds."""

    def __init__(self, incoming: queue.Queue[object], cancelled: Callable[[], bool]) -> None:
        """Take the first fed event as the hello (whatever it is, as from a real socket)."""
        self.incoming = incoming
        while (first := self.next_event(timeout=0.05)) is None:
            if cancelled():
                raise EngineError("cancelled while waiting for the hello")
        self.hello: Event = first

    def next_event(self, timeout: float) -> Event | None:
        """The next fed event, decoded; a fed exception is raised, as a lost connection
        would be."""
        try:
            item = self.incoming.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, Exception):
            raise item
        return decode(item)


class ScriptedLink:
    """An EngineLink stand-in that plays fed events and records sent commands."""

    def __init__(self, run_dir: Path, respond: Callable[[Wire], list[Wire]] | None = None) -> None:
        """A link to no engine; `respond(command)` may answer each command with events."""
        self.run_dir = run_dir
        self.config_file: str | None = None
        self.client: ScriptedClient | None = None
        self.incoming: queue.Queue[object] = queue.Queue()
        self.sent: list[Wire] = []
        self.respond = respond
        self.failure: str | None = None  # set: open() fails with this, as a broken start would
        self.opened = 0
        self._ids = (f"scripted-{n}" for n in itertools.count(1))

    def open(self, status: Callable[[str], None], cancelled: Callable[[], bool]) -> ScriptedClient:
        """Connect: the first fed event is the hello."""
        self.opened += 1
        status(f"attaching to the scripted engine of {self.run_dir}")
        if self.failure is not None:
            raise EngineError(self.failure)
        self.client = ScriptedClient(self.incoming, cancelled)
        return self.client

    def feed(self, *events: object) -> None:
        """Events arriving from the engine, in order: any JSON value, as a socket may carry."""
        for event in events:
            self.incoming.put(event)

    def lose(self, reason: str = "the engine closed the connection") -> None:
        """The connection breaks after what was fed so far."""
        self.incoming.put(EngineError(reason))

    def send(self, cmd: str, **args: Any) -> str | None:
        """Record a command (and feed the responder's answer); None when not connected."""
        if self.client is None:
            return None
        request = str(args.pop("id", None) or next(self._ids))
        command = {"cmd": cmd, "id": request, **args}
        self.sent.append(command)
        if self.respond is not None:
            self.feed(*(addressed(wire, request) for wire in self.respond(command)))
        return request

    def commands(self, cmd: str) -> list[Wire]:
        """The commands of this name sent so far."""
        return [command for command in self.sent if command["cmd"] == cmd]

    def close(self) -> None:
        """Drop the connection."""
        self.client = None

    def restart(self) -> None:
        """Nothing to change: the next open() attaches to the script again."""

    def new_run(self, config_text: str) -> Path:
        """Stop this run's engine and point at the next run directory, with config_text
        written there, as EngineLink does."""
        new = make_next_run(self.run_dir, config_text)
        self.send("shutdown")
        self.close()
        self.run_dir = new
        return new


_: type[Link] = ScriptedLink  # the stand-in keeps to the protocol the dashboard takes


class FakeEngine:
    """Answers commands as an engine does, without training, by the engine's own rules and in
    its words (config.restart_keys, service.protocol's refusals): a responder for ScriptedLink."""

    def __init__(
        self,
        state: str = "idle",
        step: int = 0,
        max_iters: int = 100,
        *,
        config: Config | None = None,
        pieces: Sequence[str] = (" sat on", " the mat"),
        vocabulary: str | None = None,
        restarts: bool = False,
    ) -> None:
        """An engine in `state` at `step`, running `config` (default: max_iters changed).

        pieces: each completion's text, streamed piece by piece, its words drawn with the
        probabilities FAKE_CONFIDENCE in turn. vocabulary: the characters
        a char tokenizer knows (a prompt with others is refused as the engine does; None:
        any). restarts: keys that need a fresh model are rejected, or with restart=true
        start the run over with a new hello, as the engine does (False: applied like hot keys).
        """
        self.state = state
        self.step = step
        self.config = config or apply_values(Config(), {"train.max_iters": max_iters})
        self.max_iters = self.config.train.max_iters
        self.pieces = list(pieces)
        self.vocabulary = vocabulary
        self.restarts = restarts

    def __call__(self, command: Wire) -> list[Wire]:
        """The events the engine would send for this command."""
        cmd = command["cmd"]
        if cmd in ("start", "resume"):
            if self.step >= self.max_iters:
                return self.refuse(at_max_iters(self.max_iters))
            return [self.set_state("running", cmd)]
        if cmd == "pause":
            return [self.set_state("paused", "pause")]
        if cmd == "save":
            return [CheckpointEvent("runs/scripted/model.ckpt", self.step).to_dict()]
        if cmd == "eval":
            return [evaluation(self.step)]
        if cmd == "sample":
            return self.sample(command)
        if cmd == "set":
            new = apply_values(self.config, command["values"])
            if self.restarts and (keys := restart_keys(self.config, new)):
                return self.restart(command, keys, new)
            return self.apply(new)
        return []

    def refuse(self, error: MiniGPTError) -> list[Wire]:
        """The error the engine answers a command with when it cannot carry it out."""
        return [failure_event(None, error).to_dict()]

    def set_state(self, state: str, reason: str) -> Wire:
        """Change state, as announced."""
        self.state = state
        return StateEvent(state, reason).to_dict()

    def sample(self, command: Wire) -> list[Wire]:
        """A completion of the prompt in two pieces, then its end."""
        request, prompt = command["id"], command["prompt"]
        if unseen := self.unseen(prompt):
            return self.refuse(unseen)
        pieces = self.pieces
        confidence = itertools.cycle(FAKE_CONFIDENCE)
        spans: list[list[tuple[str, float | None]]] = [
            [(word, next(confidence)) for word in re.findall(r"\s*\S+|\s+$", piece)]
            for piece in pieces
        ]
        tokens = [
            SampleTokenEvent(request, piece, 900.0, self.step, spans=piece_spans)
            for piece, piece_spans in zip(pieces, spans, strict=True)
        ]
        done = SampleDoneEvent(
            id=request,
            prompt=prompt,
            text="".join(pieces),
            tokens=len("".join(pieces)),
            tokens_per_sec=900.0,
            step=self.step,
            prompt_tokens=len(prompt),
            prompt_cropped=max(0, len(prompt) - self.config.model.context_length),
            settings={key: command[key] for key in command if key not in ("cmd", "id", "prompt")},
            spans=[span for piece_spans in spans for span in piece_spans],
        )
        return [event.to_dict() for event in (*tokens, done)]

    def apply(self, new: Config) -> list[Wire]:
        """A hot change, applied at the current step."""
        old, self.config = self.config, new
        return [ConfigAppliedEvent(self.step, changes(old, new)).to_dict()]

    def unseen(self, prompt: str) -> UnseenCharactersError | None:
        """The char tokenizer's refusal of a prompt with characters it never saw, or None."""
        if self.vocabulary is None:
            return None
        missing = list(dict.fromkeys(c for c in prompt if c not in self.vocabulary))
        return UnseenCharactersError(missing, len(set(self.vocabulary))) if missing else None

    def restart(self, command: Wire, keys: list[str], config: Config) -> list[Wire]:
        """Keys that need a fresh model: rejected, or with restart=true a new run of `config`
        from step 0."""
        if not command.get("restart", False):
            return [restart_refused(keys, None).to_dict()]
        self.config = config
        self.state, self.step = "idle", 0
        new = hello(config=self.config)
        new["model"]["params"] = footprint(self.config, new["model"]["vocab_size"]).params
        return [new]

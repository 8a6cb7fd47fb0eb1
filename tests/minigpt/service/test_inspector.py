"""Inspections are answered while the engine's loop is busy, from one finished step's weights."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from minigpt.events import Event, InspectionEvent, decode
from minigpt.inspection import inspect_next
from minigpt.service.engine import Engine
from minigpt.service.run import Run
from minigpt.service.server import Peer
from tests.minigpt.conftest import TRAINS
from tests.tiny import tiny_config

pytestmark = pytest.mark.trains

INSPECT = json.dumps({"cmd": "inspect", "prompt": "the cat", "id": "look"}).encode()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[Engine, Peer, socket.socket]]:
    """An engine on a tiny run whose loop never runs (as if stuck in a long step), with its
    inspector answering and one connected peer."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat.\n" * 200, encoding="utf-8")
    run = Run.start(tiny_config(corpus, **TRAINS), tmp_path / "run")
    engine = Engine(run)
    engine.inspector.start()
    ours, theirs = socket.socketpair()
    yield engine, Peer(ours, 1), theirs
    engine.inspector.close()
    run.close()
    ours.close()
    theirs.close()


def _next_event(sock: socket.socket, timeout: float) -> Event | None:
    """The next event sent to the peer, or None when none comes within `timeout` seconds."""
    sock.settimeout(timeout)
    line = bytearray()
    try:
        while not line.endswith(b"\n"):
            line += sock.recv(1)
    except TimeoutError:
        return None
    return decode(bytes(line))


def test_an_inspection_does_not_wait_for_the_loop(engine) -> None:
    """The answer comes though the loop never reaches a step boundary; a pause sent with it
    waits there, as every other command does."""
    engine, peer, theirs = engine
    engine.run.trainer.train_step()
    engine._receive(peer, json.dumps({"cmd": "pause", "id": "hold"}).encode())
    engine._receive(peer, INSPECT)
    answer = _next_event(theirs, timeout=30)
    assert isinstance(answer, InspectionEvent)
    assert answer.id == "look" and answer.step == 1 and answer.prompt_tokens[-1] == "t"
    assert _next_event(theirs, timeout=0.2) is None  # the pause is not answered yet
    assert engine.inbox.qsize() == 1


def test_an_inspection_never_sees_an_update_half_applied(engine) -> None:
    """While the optimizer holds the weights, the inspection waits; it then answers with the
    whole update and its step, the same odds as the updated model gives by hand."""
    engine, peer, theirs = engine
    trainer = engine.run.trainer
    with trainer.weights_lock:  # an optimizer step under way
        engine._receive(peer, INSPECT)
        assert _next_event(theirs, timeout=0.3) is None
        with torch.no_grad():
            for parameter in trainer.eval_model.parameters():
                parameter.mul_(1.5)
        trainer.step += 1
    answer = _next_event(theirs, timeout=30)
    assert isinstance(answer, InspectionEvent) and answer.step == 1
    by_hand = inspect_next(trainer.eval_model, trainer.corpus.tokenizer, "the cat")
    assert [c.prob for c in answer.candidates] == pytest.approx(
        [c.prob for c in by_hand.candidates], abs=1e-6
    )

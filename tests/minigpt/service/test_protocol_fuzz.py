"""Arbitrary command lines never kill the engine: fuzzed with hypothesis."""

import contextlib
import json
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigpt.events import StepEvent
from minigpt.service.client import Client
from minigpt.service.engine import Engine
from minigpt.service.protocol import COMMANDS, Command, ProtocolError, parse_command
from minigpt.service.run import Run
from minigpt.service.server import Peer
from tests.minigpt.conftest import TRAINS
from tests.tiny import tiny_config

# JSON as a client could send it, including the NaN and Infinity Python's json accepts.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(
    ["train.learning_rate", "train.max_iters", "train.batch_size", "model.d_model",
     "sample.temperature", "sample.top_k", "sample.top_p", "sample.max_new_tokens",
     "sample.prompt", "train.seed", "data.path", "nope"]
)  # fmt: skip
# Lines that name a real command with arguments of its own names, of any type and value.
COMMAND_LINES = st.sampled_from([c for c in COMMANDS if c != "set"]).flatmap(
    lambda cmd: st.fixed_dictionaries(
        {"cmd": st.just(cmd)},
        optional={key: SCALARS | JSON for key in COMMANDS[cmd]},
    )
) | st.fixed_dictionaries(
    {"cmd": st.just("set")},
    optional={
        "values": st.dictionaries(KEYS, SCALARS, max_size=3),
        "toml": st.text(max_size=40),
        "restart": st.booleans(),
    },
)
LINES = COMMAND_LINES.map(json.dumps) | JSON.map(json.dumps) | st.text(max_size=60)


@given(st.binary(max_size=200) | LINES.map(str.encode))
def test_parser_raises_only_protocol_errors(line: bytes) -> None:
    """Any bytes either parse to a Command or raise ProtocolError."""
    with contextlib.suppress(ProtocolError):
        assert isinstance(parse_command(line), Command)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """An engine on a tiny run, driven in-process, with one connected peer."""
    folder = tmp_path_factory.mktemp("fuzz")
    corpus = folder / "corpus.txt"
    corpus.write_text("the cat sat on the mat.\n" * 200, encoding="utf-8")
    run = Run.start(tiny_config(corpus, **TRAINS | {"train.max_iters": 10**6}), folder / "run")
    engine = Engine(run)
    engine.inspector.start()
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    yield engine, Peer(ours, 1), theirs
    engine.inspector.close()
    run.close()
    ours.close()
    theirs.close()


@pytest.mark.trains
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LINES)
def test_engine_survives_arbitrary_commands(engine, line: str) -> None:
    """Whatever the line, carrying it out (and any sampling or training step it
    starts) raises nothing and trips no internal error: problems go back to the
    sender as error events that say what to fix."""
    engine, peer, theirs = engine
    engine.exit_code = None
    engine._receive(peer, line.encode())
    engine._handle_inbox(wait=0.0)
    engine.inspector.requests.join()
    for _ in range(3):
        if engine.samples:
            engine.samples.stream(engine.step_seconds)
        if engine.state == "running":
            engine._train_step()
    engine.samples.cancel_all()
    assert b"internal error" not in _drain(theirs)


def _drain(sock: socket.socket) -> bytes:
    """Read whatever the engine sent the peer, so its replies never back up."""
    received = bytearray()
    with contextlib.suppress(BlockingIOError):
        while chunk := sock.recv(1 << 16):
            received += chunk
    return bytes(received)


@pytest.mark.trains
def test_live_engine_survives_a_burst_of_garbage(
    engines, config_file: Path, tmp_path: Path
) -> None:
    """Over the real socket: random bytes, binary junk and a 2 MiB line, then a normal
    client still gets its hello and training starts."""
    rng = random.Random(7)
    client = engines(tmp_path / "run", "--config", str(config_file))
    burst = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))) for _ in range(200)]
    burst += [b"x" * (2 << 20), b'{"cmd": "sample", "seed": 1e999, "top_k": -1}']
    client.send_raw(b"\n".join(burst) + b"\n")
    again = Client.connect(tmp_path / "run")
    assert again.hello.state == "idle"
    again.send("start")
    step = again.wait_for("step")
    assert isinstance(step, StepEvent) and step.step is not None and step.step >= 1
    again.close()

"""The tests' fake engine answers by the engine's own rules and in its words: which keys need
a fresh model (config.restart_keys), and the refusals the engine sends (service.protocol,
errors.UnseenCharactersError), so the dashboard tests cannot drift from the real engine."""

from minigpt.config import Config, apply_values
from minigpt.events import ConfigAppliedEvent, ConfigRejectedEvent, ErrorEvent, decode
from minigpt.service.protocol import at_max_iters
from tests.tui.scripted import FakeEngine, Wire

RUNNING = apply_values(Config(), {"train.max_iters": 100, "model.d_model": 128})


def answer(engine: FakeEngine, cmd: str, **args: object) -> list[object]:
    """The events the fake engine answers one command with, decoded."""
    wires: list[Wire] = engine({"cmd": cmd, "id": "t-1", **args})
    return [decode(wire) for wire in wires]


def test_only_a_changed_restart_key_needs_a_fresh_model() -> None:
    """A restart key set to the value it has is a change of nothing, applied as the engine
    applies it; set to another value it is refused with the engine's reason."""
    engine = FakeEngine(config=RUNNING, restarts=True)
    same = answer(engine, "set", values={"model.d_model": 128, "train.max_iters": 200})
    assert same == [ConfigAppliedEvent(0, {"train.max_iters": [100, 200]})]
    (refused,) = answer(engine, "set", values={"model.d_model": 64})
    assert isinstance(refused, ConfigRejectedEvent) and refused.needs_restart == ["model.d_model"]
    assert refused.reason.endswith("send restart=true to start over")


def test_refusals_are_the_engines_words() -> None:
    """Starting a run at its max_iters and a prompt of characters the char tokenizer never
    saw are refused as the engine refuses them, the eleventh character on only counted."""
    engine = FakeEngine(step=100, config=RUNNING, vocabulary="the cat")
    assert answer(engine, "start") == [ErrorEvent(str(at_max_iters(100)))]
    (unseen,) = answer(engine, "sample", prompt="the dog 0123456789")
    assert isinstance(unseen, ErrorEvent)
    assert "'d', 'o', 'g', '0', '1'" in unseen.message and "(and 3 more)" in unseen.message
    assert unseen.message.endswith("only knows the 6 characters of its training corpus")

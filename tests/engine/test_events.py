"""Decoding events from the wire: the same classes come back, and nothing raises."""

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.events import (
    EVENTS,
    EvalEvent,
    HelloEvent,
    SampleDoneEvent,
    StepEvent,
    UnknownEvent,
    decode,
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from([*EVENTS, "other"]), fields=st.dictionaries(st.text(max_size=20), JSON))
def test_decode_never_raises_and_types_every_field(name, fields) -> None:
    """Any object under any event name decodes to its class, each number a finite number or None."""
    event = decode({**fields, "event": name})
    assert type(event) is (EVENTS.get(name, UnknownEvent))
    for key, value in vars(event).items():
        if isinstance(value, float) and key != "time":
            assert math.isfinite(value)
    json.dumps(event.to_dict(), allow_nan=False)  # and it encodes again as plain JSON


@given(line=st.binary(max_size=50) | st.text(max_size=50))
def test_any_line_decodes(line) -> None:
    """Bytes or text that are no JSON object come back as an UnknownEvent."""
    event = decode(line)
    assert isinstance(event, UnknownEvent) or event.name in EVENTS


def test_real_events_round_trip() -> None:
    """An event encoded by the engine decodes to an equal event."""
    step = StepEvent(3, 2.5, 1e-3, 900.0, 12.0, 0.5)
    done = SampleDoneEvent("a-1", "the", " cat", 4, 80.0, 3, 1, 0, {"temperature": 0.8})
    for event in (step, done, EvalEvent(3, 2.4, None, 2.4)):
        assert decode(json.dumps(event.to_dict())) == event


def test_missing_and_wrong_fields_read_as_empty() -> None:
    """A hello missing its model and history, with a step as text, still decodes whole."""
    hello = decode({"event": "hello", "step": "12", "history": {"steps": [[1, None], "x"]}})
    assert isinstance(hello, HelloEvent)
    assert hello.step is None and hello.model.vocab_size is None
    assert hello.history.steps == [(1, None, None)] and hello.history.evals == []
    assert decode({"event": "step", "step": 2.0, "loss": 10**400}).loss is None

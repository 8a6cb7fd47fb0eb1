"""Decoding events from the wire: the same classes come back, and nothing raises."""

import dataclasses
import json
import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minigpt.events import (
    EVENTS,
    Audience,
    EvalEvent,
    Event,
    HelloEvent,
    LearnedEvent,
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
# The events' own field names (so generated objects fill real fields), and any other text.
FIELD_NAMES = st.sampled_from(
    sorted({f.name for cls in EVENTS.values() for f in dataclasses.fields(cls)})
) | st.text(max_size=8)


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


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(list(EVENTS)), fields=st.dictionaries(FIELD_NAMES, JSON))
def test_a_decoded_event_survives_the_wire_unchanged(name, fields) -> None:
    """Encoding a decoded known event and decoding it again gives an equal event: NaN in a
    free-form field (a sample's settings) reads as null already, as the wire carries it."""
    event = decode({**fields, "event": name})
    assert decode(json.loads(json.dumps(event.to_dict(), allow_nan=False))) == event


def test_nan_in_a_samples_settings_reads_as_null() -> None:
    """A hand-edited samples.jsonl line with NaN in its settings decodes as the wire would
    carry it (seen as a hello unequal to itself, once in many generated runs)."""
    line = '{"event": "sample_done", "settings": {"temperature": NaN, "top": [Infinity]}}'
    event = decode(line)
    assert isinstance(event, SampleDoneEvent)
    assert event.settings == {"temperature": None, "top": [None]}
    assert decode(json.loads(json.dumps(event.to_dict(), allow_nan=False))) == event


@given(
    line=st.binary(max_size=50)
    | st.text(max_size=50)
    | JSON.filter(lambda value: not isinstance(value, dict)).map(json.dumps)
)
def test_any_line_decodes(line) -> None:
    """Bytes or text that are no JSON object come back as an UnknownEvent with no name,
    carrying what was received: the JSON value it holds, else the text itself."""
    try:
        received = json.loads(line)
    except (ValueError, RecursionError):  # no JSON at all: the text, bytes read as UTF-8
        received = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    assume(not isinstance(received, dict))
    event = decode(line)
    assert type(event) is UnknownEvent and event.event == ""
    assert json.dumps(event.data) == json.dumps(received)  # NaN equal to NaN


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
    step = decode({"event": "step", "step": 2.0, "loss": 10**400})
    assert isinstance(step, StepEvent) and step.loss is None


def test_every_event_declares_who_hears_it() -> None:
    """An event answers an asker exactly when it carries the command's id, and only a
    reply may leave its request open for more (a sample's tokens)."""
    classes: list[type[Event]] = [*EVENTS.values(), UnknownEvent]
    for cls in classes:
        fields = {f.name for f in dataclasses.fields(cls)}
        assert isinstance(cls.audience, Audience) and isinstance(cls.ends_request, bool)
        assert ("id" in fields) == (cls.audience is not Audience.EVERYONE), cls.name
        assert cls.ends_request or cls.audience is not Audience.EVERYONE, cls.name
    streaming = {name for name, cls in EVENTS.items() if not cls.ends_request}
    assert streaming == {"sample_token"}


def test_lists_of_optional_numbers_keep_every_place() -> None:
    """A null, NaN or a value of the wrong type in a per-token list reads as None in its
    place, so the entries after it still belong to their tokens."""
    learned = decode({"event": "learned", "probe_loss": [None, 1.5, "x", 10**400, 2, True]})
    assert isinstance(learned, LearnedEvent)
    assert learned.probe_loss == [None, 1.5, None, None, 2.0, None]
    assert learned.heads == [] and learned.embedding_map.x == []

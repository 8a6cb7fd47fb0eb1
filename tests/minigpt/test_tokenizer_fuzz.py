"""Every tokenizer on arbitrary text: exact round trips, or a TokenizerError, nothing else."""

import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.errors import TokenizerError
from minigpt.tokenizer import KINDS, StreamDecoder, fit_tokenizer, tokenizer_from_state

CORPUS = "the cat sat on the mat, 42 times; ünïcödé 你好 🙂\n"


@functools.cache
def _fitted(kind: str, compact: bool):
    """A tokenizer of each kind fitted to the small corpus (cached: cl100k loads slowly)."""
    return fit_tokenizer(kind, CORPUS, compact)[0]


KINDS_AND_COMPACT = st.sampled_from([(kind, False) for kind in KINDS] + [("cl100k_base", True)])


@settings(max_examples=300, deadline=None)
@given(KINDS_AND_COMPACT, st.text())
def test_round_trip_or_a_clear_refusal(kind_and_compact: tuple, text: str) -> None:
    """encode then decode gives the text back, also through a saved-and-restored
    tokenizer and the streaming decoder; text outside a corpus-fitted vocabulary
    raises TokenizerError."""
    tokenizer = _fitted(*kind_and_compact)
    try:
        ids = tokenizer.encode(text)
    except TokenizerError:
        assert kind_and_compact[0] == "char" or kind_and_compact[1], "fixed vocabularies take all"
        return
    assert tokenizer.decode(ids) == text
    assert tokenizer_from_state(tokenizer.state_dict()).encode(text) == ids
    stream = StreamDecoder(tokenizer)
    assert "".join(stream.feed(i) for i in ids) + stream.flush() == text


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1))
def test_char_tokenizer_fitted_to_any_text_round_trips_it(text: str) -> None:
    """The char vocabulary of any text encodes and decodes that text exactly."""
    tokenizer, ids = fit_tokenizer("char", text)
    assert tokenizer.decode(ids) == text

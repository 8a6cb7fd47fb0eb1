"""Tests for minigpt.data: corpus loading errors, the token cache, splits and batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from minigpt import data as data_mod
from minigpt.data import get_batch, load_text, prepare_data
from minigpt.errors import ConfigError, DataError
from minigpt.tokenizer import ByteTokenizer, CharTokenizer, Cl100kTokenizer, Tokenizer, load_cl100k

LINE = "It was the best of times, it was the worst of times; 你好 🙂.\n"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point MINIGPT_CACHE at a fresh tmp folder so no test touches a real cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MINIGPT_CACHE", str(folder))
    return folder


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    """A small text corpus of a few hundred tokens."""
    path = tmp_path / "corpus.txt"
    path.write_text(LINE * 40, encoding="utf-8")
    return path


def _prepare(path: Path | str, tokenizer: str = "cl100k_base", **overrides):
    """prepare_data with small defaults."""
    settings = dict(compact_vocab=True, train_split=0.9, context_length=8)
    settings.update(overrides)
    return prepare_data(str(path), tokenizer, **settings)


def test_get_batch_shape_dtype_and_shift() -> None:
    """x and y are int64 (B, T), y is x shifted by one, and each row is a slice of data."""
    data = torch.arange(100, dtype=torch.int64) * 7
    x, y = get_batch(data, batch_size=5, context_length=12)
    assert x.shape == y.shape == (5, 12)
    assert x.dtype == y.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:])
    for row_x, row_y in zip(x, y, strict=True):
        start = int(row_x[0]) // 7
        assert torch.equal(row_x, data[start : start + 12])
        assert torch.equal(row_y, data[start + 1 : start + 13])


def test_get_batch_widens_int32_and_reaches_the_last_token() -> None:
    """int32 data still gives int64 batches, and a window can end on the final token."""
    data = torch.arange(5, dtype=torch.int32)
    x, y = get_batch(
        data, batch_size=64, context_length=4, generator=torch.Generator().manual_seed(0)
    )
    assert x.dtype == y.dtype == torch.int64
    assert torch.equal(y[0], torch.tensor([1, 2, 3, 4]))


def test_get_batch_deterministic_with_seeded_generator() -> None:
    """The same seed gives the same batch."""
    data = torch.arange(1000)
    first = get_batch(data, 8, 16, generator=torch.Generator().manual_seed(42))
    second = get_batch(data, 8, 16, generator=torch.Generator().manual_seed(42))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_get_batch_too_short_data() -> None:
    """Data shorter than context_length + 1 raises DataError."""
    with pytest.raises(DataError, match="context_length"):
        get_batch(torch.arange(8), 2, 8)


def test_missing_path(tmp_path: Path) -> None:
    """A path that does not exist names itself."""
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError, match=f"no such file or folder: {missing}"):
        load_text(str(missing))


def test_empty_file(tmp_path: Path) -> None:
    """An empty (or whitespace-only) file is reported as empty."""
    path = tmp_path / "empty.txt"
    path.write_text(" \n\n", encoding="utf-8")
    with pytest.raises(DataError, match="is empty"):
        load_text(str(path))


def test_invalid_utf8_names_byte_and_line(tmp_path: Path) -> None:
    """Invalid UTF-8 reports the byte offset and line and says to save as UTF-8."""
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"line one\nline two\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"not valid UTF-8 at byte 21 \(line 3\); save it as UTF-8"):
        load_text(str(path))


def test_binary_file(tmp_path: Path) -> None:
    """A file containing NUL bytes is reported as binary."""
    path = tmp_path / "blob.txt"
    path.write_bytes(b"abc\x00\x01\x02def")
    with pytest.raises(DataError, match="looks binary"):
        load_text(str(path))


def test_wrong_extension(tmp_path: Path) -> None:
    """A file of another type names the extensions that are read."""
    path = tmp_path / "book.pdf"
    path.write_text("text", encoding="utf-8")
    with pytest.raises(DataError, match=r"\.txt, \.md, \.csv"):
        load_text(str(path))


def test_unknown_builtin() -> None:
    """An unknown builtin: name lists the valid ones."""
    with pytest.raises(DataError, match="builtin:python-docs"):
        load_text("builtin:shakespeare")


def test_folder_without_text_files(tmp_path: Path) -> None:
    """A folder with no .txt/.md/.csv files says so."""
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(DataError, match="folder has no"):
        load_text(str(tmp_path / "notes"))


def test_folder_of_empty_files(tmp_path: Path) -> None:
    """A folder whose text files are all empty is reported as empty."""
    (tmp_path / "a.txt").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="is empty"):
        load_text(str(tmp_path))


def test_folder_joins_files_in_path_order(tmp_path: Path) -> None:
    """A folder corpus joins its text files recursively, sorted by path, with blank lines."""
    root = tmp_path / "books"
    (root / "sub").mkdir(parents=True)
    (root / "b.md").write_text("second", encoding="utf-8")
    (root / "a.txt").write_text("first", encoding="utf-8")
    (root / "sub" / "c.csv").write_text("third", encoding="utf-8")
    (root / "skip.py").write_text("ignored", encoding="utf-8")
    (root / ".hidden.txt").write_text("hidden", encoding="utf-8")
    text, name = load_text(str(root))
    assert text == "first\n\nsecond\n\nthird"
    assert name.startswith("books")


def test_windows_newlines_and_bom_are_normalised(tmp_path: Path) -> None:
    """A BOM is dropped and CRLF becomes LF, as text-mode reading does."""
    path = tmp_path / "win.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\r\n")
    assert load_text(str(path)) == ("one\ntwo\n", "win.txt")


def test_builtin_python_docs_loads() -> None:
    """builtin:python-docs yields the pydoc topics text (> 100k characters)."""
    text, name = load_text("builtin:python-docs")
    assert len(text) > 100_000
    assert name == "python-docs"


@pytest.mark.parametrize("tokenizer", ["cl100k_base", "char", "byte"])
def test_prepare_splits_and_round_trips(corpus_file: Path, tokenizer: str) -> None:
    """prepare_data splits 90/10 into int64 tensors that decode back to the corpus."""
    corpus = _prepare(corpus_file, tokenizer)
    assert corpus.train.dtype == corpus.val.dtype == torch.int64
    assert corpus.num_tokens == len(corpus.train) + len(corpus.val)
    assert len(corpus.train) == int(0.9 * corpus.num_tokens)
    joined = torch.cat([corpus.train, corpus.val])
    assert corpus.tokenizer.decode(joined) == LINE * 40
    assert corpus.name == "corpus.txt"


def test_prepare_split_too_short_names_numbers(corpus_file: Path) -> None:
    """A split shorter than context_length + 1 names the split, its size and the need."""
    corpus = _prepare(corpus_file)
    with pytest.raises(DataError) as info:
        _prepare(corpus_file, context_length=len(corpus.val))
    message = str(info.value)
    assert f"val split has {len(corpus.val)} tokens" in message
    assert f"context_length + 1 = {len(corpus.val) + 1}" in message
    assert "model.context_length" in message and "data.train_split" in message


def test_prepare_rejects_bad_settings(corpus_file: Path) -> None:
    """An unknown tokenizer or a train_split outside (0, 1) is a ConfigError."""
    with pytest.raises(ConfigError):
        _prepare(corpus_file, "gpt2")
    with pytest.raises(ConfigError):
        _prepare(corpus_file, train_split=1.0)


def test_cache_written_then_used(corpus_file: Path, cache_dir: Path, monkeypatch) -> None:
    """The first prepare writes a .npy cache; the second reads it without encoding."""
    first = _prepare(corpus_file)
    files = list(cache_dir.glob("cl100k_base-*.npy"))
    assert len(files) == 1
    assert np.load(files[0]).dtype == np.uint32

    def fail(*_args):
        raise AssertionError("the encoder ran although the cache holds these ids")

    monkeypatch.setattr(data_mod, "_encode_cl100k", fail)
    second = _prepare(corpus_file)
    assert torch.equal(first.train, second.train) and torch.equal(first.val, second.val)


def test_damaged_cache_is_rewritten(corpus_file: Path, cache_dir: Path) -> None:
    """A truncated or garbage cache file is ignored and replaced by a good one."""
    first = _prepare(corpus_file)
    (path,) = cache_dir.glob("cl100k_base-*.npy")
    good = path.read_bytes()
    for damage in [good[: len(good) // 2], b"garbage", b""]:
        path.write_bytes(damage)
        again = _prepare(corpus_file)
        assert torch.equal(first.train, again.train) and torch.equal(first.val, again.val)
        assert path.read_bytes() == good
    assert not list(cache_dir.glob("*.tmp"))


def test_explicit_cache_dir(corpus_file: Path, tmp_path: Path) -> None:
    """An explicit cache_dir wins over MINIGPT_CACHE."""
    folder = tmp_path / "elsewhere"
    _prepare(corpus_file, cache_dir=folder)
    assert len(list(folder.glob("*.npy"))) == 1


def test_big_text_chunked_with_progress(tmp_path: Path, monkeypatch) -> None:
    """Big texts are encoded in newline-cut chunks, reporting progress, with identical ids."""
    monkeypatch.setattr(data_mod, "BIG_TEXT_CHARS", 500)
    monkeypatch.setattr(data_mod, "CHUNK_CHARS", 200)
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
    monkeypatch.setattr(data_mod, "STREAM_BYTES", 1000)
    monkeypatch.setattr(data_mod, "STREAM_CHUNK_BYTES", CHUNK)
    monkeypatch.setattr(data_mod, "CHUNK_CHARS", 700)
    path = tmp_path / "big.txt"
    path.write_bytes(BIG)
    return path


def _state(tokenizer: Tokenizer) -> dict:
    """A tokenizer's state with tensors as lists, to compare tokenizers."""
    return data_mod._json_state(tokenizer)


def _ids(corpus: data_mod.Corpus) -> list[int]:
    """All of a corpus's ids, train then val."""
    return torch.cat([corpus.train, corpus.val]).long().tolist()


@pytest.mark.parametrize(("tokenizer", "compact"), CASES)
def test_stream_equals_in_memory(stream, monkeypatch, tokenizer: str, compact: bool) -> None:
    """A streamed file gives the in-memory tokenizer, ids and splits, in the smallest dtype."""
    path = stream
    with monkeypatch.context() as m:
        m.setattr(data_mod, "STREAM_BYTES", len(BIG))
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


def test_get_batch_on_uint16_and_uint32_keeps_large_ids() -> None:
    """Ids past the signed range of uint16/uint32 data come out unchanged in int64 batches."""
    for dtype, top in [(np.uint16, 65535), (np.uint32, 4_000_000_000)]:
        data = torch.from_numpy(np.array([top, top - 1, 1, top], dtype=dtype))
        x, y = get_batch(data, 8, 3, generator=torch.Generator().manual_seed(0))
        assert x[0].tolist() == [top, top - 1, 1] and y[0].tolist() == [top - 1, 1, top]


def test_stream_cl100k_without_newlines_round_trips(stream, monkeypatch) -> None:
    """Text with no newline to cut at is cut where it stands and still decodes to itself."""
    text = "word " * 8000
    path = stream
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(data_mod, "STREAM_CHUNK_BYTES", 3000)
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
    cl100k = ["tokenizing", "scanning", "compacting"] if compact else ["tokenizing"]
    assert stages == expected.get(tokenizer, cl100k)
    for stage in stages:
        fractions = [f for s, f in reports if s == stage]
        assert len(fractions) > 1 and fractions[-1] == 1.0
        assert fractions == sorted(set(fractions))  # strictly increasing


@pytest.mark.parametrize(("tokenizer", "compact"), CASES)
def test_stream_token_file_reused(stream, monkeypatch, tokenizer: str, compact: bool) -> None:
    """The second prepare maps the token file without reading the corpus again."""
    path = stream
    first = _prepare(path, tokenizer, compact_vocab=compact)

    def fail(*_args):
        raise AssertionError("the corpus was read although its token file is current")

    monkeypatch.setattr(data_mod, "_text_pieces", fail)
    second = _prepare(path, tokenizer, compact_vocab=compact)
    assert _state(second.tokenizer) == _state(first.tokenizer)
    assert _ids(second) == _ids(first)


def test_stream_compact_reuses_raw_ids(stream, monkeypatch) -> None:
    """compact_vocab on, then off: the raw cl100k ids are encoded once."""
    path = stream
    _prepare(path, compact_vocab=True)
    monkeypatch.setattr(data_mod, "_encode_cl100k_chunks", lambda *_: pytest.fail("re-encoded"))
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

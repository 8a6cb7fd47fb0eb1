"""Tests for minigpt.data: corpus loading errors, the token cache, splits and batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from minigpt import data as data_mod
from minigpt.data import get_batch, load_text, prepare_data
from minigpt.errors import ConfigError, DataError
from minigpt.tokenizer import load_cl100k

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

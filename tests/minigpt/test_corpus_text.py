"""Tests for minigpt.corpus_text: reading files, folders and builtins, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from minigpt.corpus_text import load_text
from minigpt.errors import DataError


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

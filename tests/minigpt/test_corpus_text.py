"""Tests for minigpt.corpus_text: reading files, folders and builtins, and what it refuses."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from minigpt import corpus_text
from minigpt.corpus_text import STDLIB_STAGE, _python_docs, load_text
from minigpt.errors import DataError

# A small stand-in for the standard library: relative path -> source.
FAKE_STDLIB = {
    "a.py": '''"""Module a."""


class C:
    """Class C.

    More about C.
    """

    def __repr__(self):
        """Return repr(self)."""


async def f():
    """Function f."""
''',
    "b.py": '''def g():
    """Return repr(self)."""


def h():
    ""


def s():
    "Lone \\ud800 surrogate."


def k():
    """Function k."""
''',
    "broken.py": '''"""Never read: the file does not parse."""
def (:
''',
    "pkg/__init__.py": '''"""Package pkg."""\n''',
    "pkg/notes.txt": "not python",
    "tests/test_a.py": '''"""Test only."""\n''',
    "test/support.py": '''"""Test support."""\n''',
    "idlelib/shell.py": '''"""IDLE."""\n''',
    "site-packages/numpy.py": '''"""Installed."""\n''',
    ".hidden/h.py": '''"""Hidden."""\n''',
}
# Its docstrings in the builtin's order: files by path, ast.walk order within one, duplicates,
# empty ones, a lone surrogate and the skipped folders' files left out.
FAKE_DOCS = ["Module a.", "Class C.\n\nMore about C.", "Function f.", "Return repr(self)."]
FAKE_DOCS += ["Function k.", "Package pkg."]


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


@pytest.fixture
def fake_stdlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """FAKE_STDLIB written under tmp_path/lib, which python-stdlib then reads as the stdlib."""
    root = tmp_path / "lib"
    for rel, source in FAKE_STDLIB.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(source, encoding="utf-8")
    monkeypatch.setattr(corpus_text, "_stdlib_root", lambda: root)
    return root


def _forbid_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any ast.parse from now on fail the test."""

    def parse(*args: object, **kwargs: object) -> ast.Module:
        raise AssertionError("parsed the stdlib although its text was cached")

    monkeypatch.setattr(ast, "parse", parse)


def test_python_stdlib_is_distinct_docstrings_then_topics(fake_stdlib: Path) -> None:
    """python-stdlib is each distinct docstring in file and walk order, then the topics text."""
    text, name = load_text("builtin:python-stdlib")
    assert text == "\n\n".join([*FAKE_DOCS, _python_docs()])
    assert name == "python-stdlib"


def test_python_stdlib_reads_its_cache_back(
    fake_stdlib: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The built text is cached; a second call reads it back without parsing anything."""
    cache = tmp_path / "cache"
    first, _ = load_text("builtin:python-stdlib", cache_dir=cache)
    [cached] = cache.iterdir()
    assert cached.name.startswith("python-stdlib-") and len(cached.stem) == 14 + 32
    assert cached.read_bytes().decode("utf-8") == first
    _forbid_parsing(monkeypatch)
    assert load_text("builtin:python-stdlib", cache_dir=cache) == (first, "python-stdlib")


def test_python_stdlib_rebuilds_a_damaged_cache(fake_stdlib: Path, tmp_path: Path) -> None:
    """A cache file that is not UTF-8 is rebuilt and rewritten, not returned or raised."""
    cache = tmp_path / "cache"
    first, _ = load_text("builtin:python-stdlib", cache_dir=cache)
    [cached] = cache.iterdir()
    cached.write_bytes(b"\xff\xfe damaged")
    assert load_text("builtin:python-stdlib", cache_dir=cache)[0] == first
    assert cached.read_bytes().decode("utf-8") == first


@pytest.mark.parametrize(
    ("doc", "mtime_step_ns"),
    [("Package pkg, longer.", 0), ("Package PKG.", 1_000_000_000)],
    ids=["size", "mtime"],
)
def test_python_stdlib_rebuilds_when_a_file_changes(
    fake_stdlib: Path, tmp_path: Path, doc: str, mtime_step_ns: int
) -> None:
    """A stdlib file whose size (same mtime) or mtime (same size) changed is read anew."""
    cache = tmp_path / "cache"
    load_text("builtin:python-stdlib", cache_dir=cache)
    path = fake_stdlib / "pkg" / "__init__.py"
    before = path.stat()
    path.write_text(f'"""{doc}"""\n', encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + mtime_step_ns))
    text, _ = load_text("builtin:python-stdlib", cache_dir=cache)
    assert text == "\n\n".join([*FAKE_DOCS[:-1], doc, _python_docs()])
    assert len(list(cache.iterdir())) == 2  # the new text is cached under a new key


def test_python_stdlib_without_a_writable_cache(fake_stdlib: Path, tmp_path: Path) -> None:
    """A cache folder that cannot be made (a file stands there) only loses the cache."""
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder", encoding="utf-8")
    text, _ = load_text("builtin:python-stdlib", cache_dir=blocked / "cache")
    assert text == "\n\n".join([*FAKE_DOCS, _python_docs()])


def test_python_stdlib_reports_progress_per_file(fake_stdlib: Path) -> None:
    """Building reports the reading stage after each stdlib file, rising to 1.0."""
    seen: list[tuple[str, float]] = []
    load_text("builtin:python-stdlib", progress=lambda stage, f: seen.append((stage, f)))
    assert {stage for stage, _ in seen} == {STDLIB_STAGE}
    fractions = [f for _, f in seen]
    assert fractions == [1 / 4, 2 / 4, 3 / 4, 1.0]  # a, b, broken, pkg/__init__


def test_python_docs_ignores_the_cache(tmp_path: Path) -> None:
    """python-docs stays the bare topics text, with or without a cache folder, writing nothing."""
    assert load_text("builtin:python-docs", cache_dir=tmp_path) == (_python_docs(), "python-docs")
    assert list(tmp_path.iterdir()) == []


def test_builtin_python_stdlib_from_the_real_library(tmp_path: Path) -> None:
    """This Python's stdlib gives over 1.5 MB before the topics text, the same when cached."""
    text, _ = load_text("builtin:python-stdlib", cache_dir=tmp_path)
    assert text.endswith("\n\n" + _python_docs())
    assert len(text.encode("utf-8")) > 1_500_000
    assert load_text("builtin:python-stdlib", cache_dir=tmp_path)[0] == text

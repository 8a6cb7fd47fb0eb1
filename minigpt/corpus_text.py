"""The corpus text: reading data.path as text, whole or streamed piece by piece.

Contract:
- `load_text(path)` reads a .txt/.md/.csv file, a folder of them (recursively, sorted by path,
  joined with a blank line) or `builtin:python-docs`; every problem the user can fix raises a
  one-line DataError that says what to do.
- Text reads as `open(path).read()` gives it: UTF-8, a BOM dropped, CRLF/CR become LF.
- `big_file(path)` says whether data.path is a single file over STREAM_BYTES; such a file is
  never read whole: `stream_text` yields its text in pieces of STREAM_CHUNK_BYTES, decoded and
  checked as `load_text` would (same DataErrors), reporting `progress(stage, fraction)`.
- Nothing here tokenizes or touches the network.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from pathlib import Path

from minigpt.errors import DataError

TEXT_SUFFIXES = (".txt", ".md", ".csv")
BUILTIN_PREFIX = "builtin:"
# A single file larger than this is streamed rather than read whole, this much at once.
STREAM_BYTES = 64 << 20
STREAM_CHUNK_BYTES = 8 << 20

Progress = Callable[[str, float], None]


def _python_docs() -> str:
    """The topic help texts that ship inside every CPython (pydoc_data.topics), ~465 KB."""
    try:
        from pydoc_data.topics import topics
    except ImportError as e:
        raise DataError(
            "builtin:python-docs: this Python lacks pydoc_data; set data.path to a text file"
        ) from e
    return "\n\n".join(topics[key] for key in sorted(topics))


BUILTINS: dict[str, Callable[[], str]] = {"python-docs": _python_docs}


def _text_pieces(path: Path, chunk_bytes: int) -> Iterator[tuple[str, int]]:
    """Decode a UTF-8 file chunk_bytes at a time (-1: at once): (text, bytes read so far) pairs.

    The text is as `open(path).read()` would give it: a BOM is dropped and CRLF/CR become LF,
    also where a chunk boundary splits them. NUL bytes or invalid UTF-8 raise a DataError.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    done = lines = 0
    started = False  # whether any character was decoded yet (a BOM can only come first)
    carry = ""  # a CR at the end of a piece waits: it may be the first half of a CRLF
    try:
        with open(path, "rb") as file:
            while True:
                data = file.read(chunk_bytes)
                if b"\x00" in data:
                    raise DataError(
                        f"{path} looks binary (it contains NUL bytes); data.path needs UTF-8"
                        " text (if it is UTF-16, save it as UTF-8)"
                    )
                pending = len(decoder.getstate()[0])  # bytes of a character begun earlier
                try:
                    text = decoder.decode(data, final=not data)
                except UnicodeDecodeError as e:
                    line = lines + data.count(b"\n", 0, max(0, e.start - pending)) + 1
                    raise DataError(
                        f"{path}: not valid UTF-8 at byte {done - pending + e.start}"
                        f" (line {line}); save it as UTF-8"
                    ) from e
                lines += data.count(b"\n")
                done += len(data)
                if text and not started:
                    # Why: editors on Windows add a BOM and CRLF; text mode drops/normalises them.
                    text, started = text.removeprefix("\ufeff"), True
                text, carry = carry + text, ""
                if data and text.endswith("\r"):
                    text, carry = text[:-1], "\r"
                yield text.replace("\r\n", "\n").replace("\r", "\n"), done
                if not data:
                    return
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror}); check its permissions") from e


def _read_text_file(path: Path) -> str:
    """Read one UTF-8 text file with universal newlines, as `open(path).read()` would."""
    return "".join(text for text, _ in _text_pieces(path, -1))


def _is_text_file(path: Path, root: Path) -> bool:
    """Whether a folder entry is a readable corpus file (hidden files and folders skipped)."""
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return path.suffix.lower() in TEXT_SUFFIXES and not hidden and path.is_file()


def _read_folder(root: Path, shown: str) -> tuple[str, str]:
    """Join the folder's text files in path order, one blank line between files."""
    files = sorted(
        (p for p in root.rglob("*") if _is_text_file(p, root)),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise DataError(f"{shown}: folder has no {', '.join(TEXT_SUFFIXES)} files")
    texts = [text for text in map(_read_text_file, files) if text.strip()]
    if not texts:
        raise DataError(f"{shown} is empty (all its {len(files)} text files are empty)")
    return "\n\n".join(texts), f"{root.resolve().name}/ ({len(texts)} files)"


def _check_suffix(file: Path, shown: str) -> None:
    """Raise DataError unless the file is of a type data.path reads."""
    if file.suffix.lower() not in TEXT_SUFFIXES:
        raise DataError(
            f"{shown}: unsupported file type {file.suffix or '(no extension)'!r}; data.path reads"
            f" {', '.join(TEXT_SUFFIXES)} files or a folder of them"
        )


def load_text(path: str) -> tuple[str, str]:
    """Read the corpus at `path`; return (text, a short display name)."""
    if path.startswith(BUILTIN_PREFIX):
        name = path[len(BUILTIN_PREFIX) :]
        if name not in BUILTINS:
            valid = ", ".join(BUILTIN_PREFIX + key for key in sorted(BUILTINS))
            raise DataError(f"data.path: unknown builtin corpus {path!r}; valid: {valid}")
        return BUILTINS[name](), name
    file = Path(path).expanduser()
    if file.is_dir():
        return _read_folder(file, path)
    if not file.exists():
        raise DataError(f"data.path: no such file or folder: {path}")
    _check_suffix(file, path)
    text = _read_text_file(file)
    if not text.strip():
        raise DataError(f"{path} is empty")
    return text, file.name


def big_file(path: str) -> Path | None:
    """The file at path if it is one text file over STREAM_BYTES (to stream), else None."""
    file = Path(path).expanduser()
    if path.startswith(BUILTIN_PREFIX) or not file.is_file():
        return None
    if file.stat().st_size <= STREAM_BYTES:
        return None
    _check_suffix(file, path)
    return file


def stream_text(file: Path, shown: str, stage: str, progress: Progress | None) -> Iterator[str]:
    """A big file's text piece by piece, reporting `stage` progress as its bytes are read."""
    total = max(1, file.stat().st_size)
    blank, reported = True, 0
    for text, done in _text_pieces(file, STREAM_CHUNK_BYTES):
        blank = blank and not text.strip()
        yield text
        if progress is not None and done > reported:
            reported = done
            progress(stage, min(1.0, done / total))
    if blank:
        raise DataError(f"{shown} is empty")

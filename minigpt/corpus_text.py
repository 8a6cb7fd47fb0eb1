"""The corpus text: reading data.path as text, whole or streamed piece by piece.

Contract:
- `load_text(path)` reads a .txt/.md/.csv file, a folder of them (recursively, sorted by path,
  joined with a blank line) or a builtin; every problem the user can fix raises a one-line
  DataError that says what to do.
- Builtins are read offline from this Python: `builtin:python-docs` is the pydoc topics text
  (~0.47 MB, unchanged so old runs resume on the same text); `builtin:python-stdlib` is every
  docstring of the standard library (module, class, function; ast.walk order per file, files
  sorted by path, test/tests/idlelib/site-packages and hidden paths skipped, duplicates and
  empty ones dropped), parsed with `ast`, never imported, then a blank line and the topics
  text (~2.1 MB in all). The topics come last so that the val split, the last share of the
  text, is the language reference's prose, as it was with python-docs.
  A stdlib file that cannot be read or parsed is skipped. Parsing takes seconds, so with a
  `cache_dir` the text is kept there as python-stdlib-KEY.txt (KEY hashes the Python version
  and each file's path, size and mtime) and read back while they are unchanged; a cache that
  cannot be read is rebuilt, one that cannot be written only costs the time. While parsing it
  reports `progress("reading the standard library", fraction)` after each file.
- Text reads as `open(path).read()` gives it: UTF-8, a BOM dropped, CRLF/CR become LF.
- `big_file(path)` says whether data.path is a single file over STREAM_BYTES; such a file is
  never read whole: `stream_text` yields its text in pieces of STREAM_CHUNK_BYTES, decoded and
  checked as `load_text` would (same DataErrors), reporting `progress(stage, fraction)`.
- Nothing here tokenizes or touches the network.
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import hashlib
import os
import sys
import sysconfig
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from minigpt.atomic import write_text_atomic
from minigpt.errors import DataError

TEXT_SUFFIXES = (".txt", ".md", ".csv")
BUILTIN_PREFIX = "builtin:"
# A single file larger than this is streamed rather than read whole, this much at once.
STREAM_BYTES = 64 << 20
STREAM_CHUNK_BYTES = 8 << 20

Progress = Callable[[str, float], None]
# A builtin corpus's text, given the cache folder (None: no cache) and the progress callback.
Builtin = Callable[[Path | None, Progress | None], str]

STDLIB_STAGE = "reading the standard library"
# Folders of the stdlib whose docstrings are not the library's: its tests, IDLE, installed packages.
STDLIB_SKIP = frozenset({"site-packages", "test", "tests", "idlelib"})
# Bumped when the way the text is made changes, so older cached texts are not read back.
STDLIB_FORMAT = "python-stdlib 2"
_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _python_docs() -> str:
    """The topic help texts that ship inside every CPython (pydoc_data.topics), ~465 KB."""
    try:
        from pydoc_data.topics import topics
    except ImportError as e:
        raise DataError(
            "builtin:python-docs: this Python lacks pydoc_data; set data.path to a text file"
        ) from e
    return "\n\n".join(topics[key] for key in sorted(topics))


def _stdlib_root() -> Path:
    """The folder of this Python's standard library source (a function, so tests can swap it)."""
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_files(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    """The stdlib's .py files as (relative posix path, path, stat), sorted by that path."""
    found = []
    for folder, dirs, names in os.walk(root):
        # Pruned in place, so os.walk never descends into site-packages (maybe large).
        dirs[:] = [d for d in dirs if d not in STDLIB_SKIP and not d.startswith(".")]
        for name in names:
            path = Path(folder, name)
            if name.endswith(".py") and not name.startswith("."):
                with contextlib.suppress(OSError):  # vanished or unreadable: skipped
                    found.append((path.relative_to(root).as_posix(), path, path.stat()))
    return sorted(found, key=lambda entry: entry[0])


def _stdlib_key(root: Path, files: list[tuple[str, Path, os.stat_result]]) -> str:
    """32 hex characters that change when Python, the stdlib or the way the text is made do."""
    digest = hashlib.sha256(f"{STDLIB_FORMAT}\0{sys.version}\0{root}".encode())
    for rel, _, stat in files:
        digest.update(f"\0{rel}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def _docstrings(path: Path) -> list[str]:
    """The docstrings of a file's module, classes and functions in ast.walk order; [] if the
    file cannot be read or parsed (a broken stdlib file must not stop training)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, OSError, ValueError, RecursionError):
        return []
    found = (ast.get_docstring(node) for node in ast.walk(tree) if isinstance(node, _DOCUMENTED))
    return [doc for doc in found if doc]


def _encodable(text: str) -> bool:
    """Whether text is valid UTF-8 once encoded (a docstring may hold a lone surrogate escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _build_stdlib(files: list[tuple[str, Path, os.stat_result]], progress: Progress | None) -> str:
    """Each distinct docstring of the files, then the topics text, one blank line apart."""
    seen: set[str] = set()
    docs: list[str] = []
    with warnings.catch_warnings():
        # Why: a newer Python warns (SyntaxWarning) about old escapes while parsing; not ours.
        warnings.simplefilter("ignore")
        for done, (_, path, _) in enumerate(files, 1):
            for doc in _docstrings(path):
                if doc not in seen and _encodable(doc):
                    seen.add(doc)
                    docs.append(doc)
            if progress is not None:
                progress(STDLIB_STAGE, done / len(files))
    return "\n\n".join([*docs, _python_docs()])


def _read_cached(path: Path) -> str | None:
    """The cached text at path, or None if it is missing, unreadable, empty or not UTF-8."""
    try:
        # Bytes, not text mode: a \r in a docstring must come back as it was written.
        return path.read_bytes().decode("utf-8") or None
    except (OSError, UnicodeDecodeError):
        return None


def _python_stdlib(cache_dir: Path | None, progress: Progress | None) -> str:
    """The stdlib's docstrings and the topics text (~2.1 MB), from cache_dir when it has it."""
    root = _stdlib_root()
    files = _stdlib_files(root)
    cached = (
        None if cache_dir is None else cache_dir / f"python-stdlib-{_stdlib_key(root, files)}.txt"
    )
    if cached is not None and (text := _read_cached(cached)) is not None:
        return text
    text = _build_stdlib(files, progress)
    if cached is not None:
        # Why: the cache only saves seconds; a read-only or full disk must not stop training.
        with contextlib.suppress(OSError):
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(cached, text)
    return text


BUILTINS: dict[str, Builtin] = {
    "python-docs": lambda cache_dir, progress: _python_docs(),
    "python-stdlib": _python_stdlib,
}


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


def load_text(
    path: str, *, cache_dir: Path | None = None, progress: Progress | None = None
) -> tuple[str, str]:
    """Read the corpus at `path`; return (text, a short display name).

    `cache_dir` and `progress` serve the builtins that take time to make (python-stdlib).
    """
    if path.startswith(BUILTIN_PREFIX):
        name = path[len(BUILTIN_PREFIX) :]
        if name not in BUILTINS:
            valid = ", ".join(BUILTIN_PREFIX + key for key in sorted(BUILTINS))
            raise DataError(f"data.path: unknown builtin corpus {path!r}; valid: {valid}")
        return BUILTINS[name](cache_dir, progress), name
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

"""Corpus loading, tokenization with token caches, train/val split, and batch sampling.

Contract:
- `load_text(path)` reads a .txt/.md/.csv file, a folder of them (recursively, sorted by path,
  joined with a blank line) or `builtin:python-docs`; every problem the user can fix raises a
  one-line DataError that says what to do.
- `prepare_data(...)` turns the `[data]` settings into a `Corpus`: the tokenizer plus 1-D
  train/val token tensors (the first `train_split` of the tokens is train, the rest val). Each
  split must hold at least `context_length + 1` tokens.
- Folders, builtins and files up to STREAM_BYTES are read whole: their tensors are int64 in
  memory, and cl100k_base ids are cached per text (sha256) as .npy in the cache folder.
- A single file over STREAM_BYTES is streamed: read in STREAM_CHUNK_BYTES pieces, decoded and
  checked as `load_text` would (same DataErrors), tokenized piece by piece into a token file in
  the cache folder, and memory-mapped: its tensors are uint8/uint16/uint32 (the smallest that
  holds the vocabulary) views of that file, so memory stays bounded whatever the corpus size.
  The ids equal those of reading the file whole (cl100k: unless STREAM_CHUNK_BYTES characters
  pass without a line break to cut at). There is one token file per file path and tokenizer
  variant, reused while the file's size and mtime are unchanged; a stale, truncated or damaged
  one is rebuilt in place. Each pass reports `progress(stage, fraction)`: "scanning" (fitting a
  char or compact vocabulary), "tokenizing", "compacting" (raw cl100k ids to compact ids).
- Every cache file is written atomically (temp file + os.replace).
- `get_batch(...)` draws (x, y) int64 (B, T) batches where y is x shifted left by one token.
- Nothing here touches the network.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import torch

from minigpt.errors import ConfigError, DataError, TokenizerError
from minigpt.tokenizer import (
    KINDS,
    ByteTokenizer,
    CharTokenizer,
    Cl100kTokenizer,
    Tokenizer,
    code_points,
    fit_tokenizer,
    load_cl100k,
    tokenizer_from_state,
)

TEXT_SUFFIXES = (".txt", ".md", ".csv")
BUILTIN_PREFIX = "builtin:"
# Texts longer than this are tokenized in chunks, with progress reports.
BIG_TEXT_CHARS = 4_000_000
CHUNK_CHARS = 1_000_000
# A single file larger than this streams into a memory-mapped token file, read this much at once.
STREAM_BYTES = 64 << 20
STREAM_CHUNK_BYTES = 8 << 20

Progress = Callable[[str, float], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Corpus:
    """A tokenized corpus: the tokenizer and the train/val token ids.

    The ids are 1-D tensors: int64 in memory, or uint8/uint16/uint32 views of a mapped token file.
    """

    tokenizer: Tokenizer
    train: torch.Tensor
    val: torch.Tensor
    name: str
    num_tokens: int


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


def default_cache_dir() -> Path:
    """$MINIGPT_CACHE, else ./data/cache when ./data exists, else ~/.cache/minigpt-tui."""
    env = os.environ.get("MINIGPT_CACHE")
    if env:
        return Path(env).expanduser()
    if Path("data").is_dir():
        return Path("data") / "cache"
    return Path.home() / ".cache" / "minigpt-tui"


def _split_at_newlines(text: str, size: int) -> list[str]:
    """Cut text into ~size-char chunks, each cut right after a newline followed by non-space.

    cl100k's pre-tokenizer never joins such a newline with the next character, so encoding the
    chunks separately yields exactly the ids of encoding the whole text.
    """
    chunks, start = [], 0
    while len(text) - start > size:
        cut = text.find("\n", start + size)
        while cut != -1 and cut + 1 < len(text) and text[cut + 1].isspace():
            cut = text.find("\n", cut + 1)
        if cut == -1 or cut + 1 >= len(text):
            break
        chunks.append(text[start : cut + 1])
        start = cut + 1
    chunks.append(text[start:])
    return chunks


def _slices(text: str, size: int) -> Iterator[str]:
    """Cut text every size characters, wherever that falls."""
    return (text[start : start + size] for start in range(0, len(text), size))


def _encode_cl100k_chunks(chunks: list[str]) -> Iterator[tuple[np.ndarray, int]]:
    """Raw cl100k ids of chunks, a few in parallel: (int64 ids, characters encoded) per group."""
    enc = load_cl100k()
    threads = max(1, min(8, os.cpu_count() or 1))
    for first in range(0, len(chunks), threads):
        group = chunks[first : first + threads]
        # tiktoken releases the GIL while encoding, so threads run the chunks in parallel.
        parts = [np.asarray(ids, dtype=np.int64) for ids in enc.encode_ordinary_batch(group)]
        yield np.concatenate(parts), sum(map(len, group))


def _encode_cl100k(text: str, progress: Progress | None) -> np.ndarray:
    """Raw cl100k ids of text, shape (N,) int64; big texts in parallel chunks with progress."""
    if len(text) <= BIG_TEXT_CHARS:
        return np.asarray(load_cl100k().encode_ordinary(text), dtype=np.int64)
    parts, done = [], 0
    for ids, chars in _encode_cl100k_chunks(_split_at_newlines(text, CHUNK_CHARS)):
        parts.append(ids)
        done += chars
        if progress is not None:
            progress("tokenizing", done / len(text))
    return np.concatenate(parts)


def _id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds ids 0..vocab_size-1."""
    return np.dtype(
        np.uint8 if vocab_size <= 1 << 8 else np.uint16 if vocab_size <= 1 << 16 else np.uint32
    )


def _read_cache(path: Path, dtype: np.dtype, n_vocab: int, max_len: int) -> np.ndarray | None:
    """Cached ids if the file is intact and plausible, else None (missing or damaged)."""
    try:
        ids = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if ids.dtype != dtype or ids.ndim != 1 or not 0 < len(ids) <= max_len:
        return None
    return ids if int(ids.max()) < n_vocab else None


def _write_atomically(path: Path, write: Callable[[IO[bytes]], T]) -> T:
    """Write path through a temp file and os.replace: a crash never leaves a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            result = write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return result


def _write_cache(path: Path, ids: np.ndarray) -> None:
    """Write ids as .npy atomically; a failure only loses the cache."""
    try:
        _write_atomically(path, lambda f: np.save(f, ids))
    except OSError:
        # Why: the cache only saves time; a read-only or full disk must not stop training.
        return


def _cached_cl100k_ids(text: str, cache_dir: Path, progress: Progress | None) -> np.ndarray:
    """Raw cl100k ids of text, from the cache when possible, else encoded and cached."""
    n_vocab = load_cl100k().n_vocab
    dtype = _id_dtype(n_vocab)  # uint32: cl100k ids exceed 65535
    data = text.encode("utf-8")
    path = cache_dir / f"cl100k_base-{hashlib.sha256(data).hexdigest()}.npy"
    ids = _read_cache(path, dtype, n_vocab, max_len=len(data))
    if ids is None:
        ids = _encode_cl100k(text, progress).astype(dtype)
        _write_cache(path, ids)
    return ids


def _big_file(path: str) -> Path | None:
    """The file at path if it is one text file over STREAM_BYTES (to stream), else None."""
    file = Path(path).expanduser()
    if path.startswith(BUILTIN_PREFIX) or not file.is_file():
        return None
    if file.stat().st_size <= STREAM_BYTES:
        return None
    _check_suffix(file, path)
    return file


def _streamed_text(file: Path, shown: str, stage: str, progress: Progress | None) -> Iterator[str]:
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


def _scan_chars(texts: Iterable[str]) -> CharTokenizer:
    """Fit the char tokenizer to streamed text: one pass collecting the characters used."""
    seen = np.zeros(0x110000, dtype=bool)  # one flag per Unicode code point
    for text in texts:
        for part in _slices(text, CHUNK_CHARS):
            seen[code_points(part)] = True
    return CharTokenizer("".join(map(chr, np.flatnonzero(seen).tolist())))


def _encode_texts(tokenizer: Tokenizer, texts: Iterable[str]) -> Iterator[np.ndarray]:
    """Ids of streamed text with a char or byte tokenizer, CHUNK_CHARS characters at a time."""
    for text in texts:
        for part in _slices(text, CHUNK_CHARS):
            yield tokenizer.encode_array(part)


def _encode_cl100k_texts(texts: Iterable[str]) -> Iterator[np.ndarray]:
    """Raw cl100k ids of streamed text, equal to encoding the whole text at once.

    Pieces are cut only where `_split_at_newlines` would cut; the tail after the last such
    cut waits for the next piece. A tail that finds no cut in STREAM_CHUNK_BYTES characters
    (text without line breaks) is cut where it stands, and its ids may differ there.
    """
    tail = ""
    for text in texts:
        # Cuts inside text stay valid with the tail in front: no need to copy tail + text.
        chunks = _split_at_newlines(text, CHUNK_CHARS)
        chunks[0] = tail + chunks[0]
        tail = chunks.pop()
        if len(tail) > STREAM_CHUNK_BYTES:
            chunks += _slices(tail, CHUNK_CHARS)
            tail = ""
        for ids, _ in _encode_cl100k_chunks(chunks):
            yield ids
    for ids, _ in _encode_cl100k_chunks([tail] if tail else []):
        yield ids


def _read_ids(
    path: Path, dtype: np.dtype, stage: str, progress: Progress | None
) -> Iterator[np.ndarray]:
    """A token file's ids in pieces, by plain reads (mapping it would grow RSS to its size)."""
    total, done = max(1, path.stat().st_size), 0
    with open(path, "rb") as f:
        while data := f.read(STREAM_CHUNK_BYTES // dtype.itemsize * dtype.itemsize):
            yield np.frombuffer(data, dtype=dtype)
            done += len(data)
            if progress is not None:
                progress(stage, done / total)


def _json_state(tokenizer: Tokenizer) -> dict[str, Any]:
    """The tokenizer's state_dict with tensors as lists, to store as JSON."""
    state = tokenizer.state_dict()
    return {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


@dataclass(frozen=True)
class _TokenFile:
    """A token file in the cache folder (raw ids) with its JSON sidecar (what they mean).

    The sidecar holds the source file's path, size and mtime, the id count and dtype, the
    tokenizer state and `own`: whether that tokenizer was fitted to this very file.
    """

    path: Path
    source: dict[str, Any]

    @property
    def sidecar(self) -> Path:
        """The JSON file beside the ids."""
        return self.path.with_suffix(".json")

    def load(self, tokenizer: Tokenizer | None) -> tuple[Tokenizer, np.ndarray] | None:
        """Tokenizer and mapped ids if current, intact and in tokenizer's vocabulary, else None.

        A tokenizer of None accepts the vocabulary that was fitted to the file itself.
        """
        try:
            meta = json.loads(self.sidecar.read_text(encoding="utf-8"))
            if any(meta[key] != value for key, value in self.source.items()):
                return None
            if tokenizer is None and meta["own"] is True:
                tokenizer = tokenizer_from_state(meta["tokenizer"])
            if tokenizer is None or meta["tokenizer"] != _json_state(tokenizer):
                return None
            dtype, count = _id_dtype(tokenizer.vocab_size), meta["count"]
            if meta["dtype"] != dtype.name or not (isinstance(count, int) and count > 0):
                return None
            if self.path.stat().st_size != count * dtype.itemsize:
                return None  # truncated, or longer than the sidecar says
        except (OSError, ValueError, KeyError, TypeError, TokenizerError):
            return None
        return self._map(tokenizer, count)

    def _map(self, tokenizer: Tokenizer, count: int) -> tuple[Tokenizer, np.ndarray]:
        """Memory-map the count ids (copy-on-write: writable for torch, the file never changes)."""
        dtype = _id_dtype(tokenizer.vocab_size)
        return tokenizer, np.memmap(self.path, dtype=dtype, mode="c", shape=(count,))

    def build(
        self, tokenizer: Tokenizer, own: bool, ids: Iterable[np.ndarray]
    ) -> tuple[Tokenizer, np.ndarray]:
        """Write ids (in tokenizer's vocabulary) and the sidecar, then memory-map them."""
        dtype = _id_dtype(tokenizer.vocab_size)

        def write(f: IO[bytes]) -> int:
            """Append each piece of ids in the file's dtype; return the count."""
            count = 0
            for part in ids:
                f.write(part.astype(dtype, copy=False).tobytes())
                count += len(part)
            return count

        meta = {"own": own, "tokenizer": _json_state(tokenizer), "dtype": dtype.name}
        try:
            # The old sidecar goes first, so a crash never pairs it with new ids.
            self.sidecar.unlink(missing_ok=True)
            meta |= self.source | {"count": _write_atomically(self.path, write)}
            _write_atomically(self.sidecar, lambda f: f.write(json.dumps(meta).encode()))
        except OSError as e:
            raise DataError(
                f"{self.path}: cannot write the token file ({e.strerror}); set MINIGPT_CACHE to"
                " a writable folder with room for it"
            ) from e
        return self._map(tokenizer, meta["count"])


def _used_ids(raw: Path, progress: Progress | None) -> np.ndarray:
    """The sorted unique ids of a raw cl100k token file, by one streamed pass."""
    seen = np.zeros(load_cl100k().n_vocab, dtype=bool)
    for ids in _read_ids(raw, np.dtype(np.uint32), "scanning", progress):
        seen[ids] = True
    return np.flatnonzero(seen)


def _stream_corpus(
    file: Path,
    shown: str,
    kind: str,
    compact_vocab: bool,
    fitted: Tokenizer | None,
    cache_dir: Path,
    progress: Progress | None,
) -> tuple[Tokenizer, np.ndarray]:
    """Tokenize a big file through a token file (reused while the file is unchanged)."""
    stat = file.stat()
    resolved = str(file.resolve())
    source = {"source": resolved, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    key = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:32]

    def texts(stage: str) -> Iterator[str]:
        """One streamed pass over the file's text."""
        return _streamed_text(file, shown, stage, progress)

    own = fitted is None  # a fitted vocabulary (a resumed run's) may differ from the file's own
    tokenizer = fitted
    if kind == "byte" and tokenizer is None:
        tokenizer = ByteTokenizer()
    if kind == "cl100k_base" and tokenizer is None and not compact_vocab:
        tokenizer = Cl100kTokenizer()
    full_ids = isinstance(tokenizer, Cl100kTokenizer) and tokenizer.keep_ids is None
    compact = kind == "cl100k_base" and not full_ids
    target = _TokenFile(cache_dir / f"{kind}{'-compact' if compact else ''}-{key}.bin", source)
    if (found := target.load(tokenizer)) is not None:
        return found
    if kind != "cl100k_base":
        tokenizer = tokenizer or _scan_chars(texts("scanning"))
        return target.build(tokenizer, own, _encode_texts(tokenizer, texts("tokenizing")))
    # Raw cl100k ids come first; a compact vocabulary is then fitted and mapped from them.
    raw, full = _TokenFile(cache_dir / f"{kind}-{key}.bin", source), Cl100kTokenizer()
    if not compact or raw.load(full) is None:
        found = raw.build(full, True, _encode_cl100k_texts(texts("tokenizing")))
        if not compact:
            return found
    if isinstance(tokenizer, Cl100kTokenizer):
        bpe = tokenizer
    else:
        bpe = Cl100kTokenizer(_used_ids(raw.path, progress))
    raw_ids = _read_ids(raw.path, np.dtype(np.uint32), "compacting", progress)
    return target.build(bpe, own, (bpe.from_cl100k_ids(ids) for ids in raw_ids))


def _check_split(split: str, n: int, context_length: int, fix: str) -> None:
    """Raise DataError unless a split can yield one (context_length + 1)-token window."""
    if n < context_length + 1:
        raise DataError(
            f"the {split} split has {n} tokens but needs at least context_length + 1 ="
            f" {context_length + 1}; use a longer corpus, a smaller model.context_length,"
            f" or {fix} data.train_split"
        )


def prepare_data(
    path: str,
    tokenizer: str,
    compact_vocab: bool,
    train_split: float,
    context_length: int,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    fitted: Tokenizer | None = None,
) -> Corpus:
    """Load, tokenize and split a corpus per the [data] settings (see the module docstring).

    `fitted` is a tokenizer to reuse instead of fitting one to the text: a
    resumed run must keep the vocabulary its checkpoint was trained with.
    """
    if tokenizer not in KINDS:
        raise ConfigError(
            f"data.tokenizer: unknown tokenizer {tokenizer!r}; choose one of {', '.join(KINDS)}"
        )
    if not 0.0 < train_split < 1.0:
        raise ConfigError(f"data.train_split must be between 0 and 1, got {train_split}")
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if (file := _big_file(path)) is not None:
        kind = tokenizer if fitted is None else fitted.kind
        tok, ids = _stream_corpus(file, path, kind, compact_vocab, fitted, folder, progress)
        name = file.name
    else:
        tok, ids, name = _tokenize_text(path, tokenizer, compact_vocab, fitted, folder, progress)
    data = torch.from_numpy(ids)  # (N,): int64 in memory, or a view of the mapped token file
    n_train = int(train_split * len(data))
    train, val = data[:n_train], data[n_train:]
    _check_split("train", len(train), context_length, "a larger")
    _check_split("val", len(val), context_length, "a smaller")
    return Corpus(tokenizer=tok, train=train, val=val, name=name, num_tokens=len(data))


def _tokenize_text(
    path: str,
    kind: str,
    compact_vocab: bool,
    fitted: Tokenizer | None,
    cache_dir: Path,
    progress: Progress | None,
) -> tuple[Tokenizer, np.ndarray, str]:
    """Read a corpus whole and tokenize it in memory: (tokenizer, int64 ids, display name)."""
    text, name = load_text(path)
    raw = _cached_cl100k_ids(text, cache_dir, progress) if kind == "cl100k_base" else None
    if fitted is None:
        return (*fit_tokenizer(kind, text, compact_vocab, cl100k_ids=raw), name)
    if isinstance(fitted, Cl100kTokenizer) and raw is not None:
        return fitted, fitted.from_cl100k_ids(raw), name
    return fitted, fitted.encode_array(text), name


def get_batch(
    data: torch.Tensor,
    batch_size: int,
    context_length: int,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample batch_size random windows: x and y int64 (B, T), y = x shifted by one token."""
    if len(data) < context_length + 1:
        raise DataError(
            f"cannot draw a batch: {len(data)} tokens but context_length + 1 ="
            f" {context_length + 1} are needed"
        )
    ix = torch.randint(len(data) - context_length, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(context_length + 1)  # (T+1,)
    windows = data[(ix[:, None] + offsets).to(data.device)].long()  # (B, T+1)
    device = torch.device(device)
    if device.type == "cuda" and windows.device.type == "cpu":
        # Pinned host memory lets the copy overlap with compute on the GPU.
        windows = windows.pin_memory().to(device, non_blocking=True)
    else:
        windows = windows.to(device)
    # contiguous: training code reshapes y with .view(B * T).
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()

"""Corpus loading, tokenization with a token cache, train/val split, and batch sampling.

Contract:
- `load_text(path)` reads a .txt/.md/.csv file, a folder of them (recursively, sorted by path,
  joined with a blank line) or `builtin:python-docs`; every problem the user can fix raises a
  one-line DataError that says what to do.
- `prepare_data(...)` turns the `[data]` settings into a `Corpus`: the tokenizer plus 1-D int64
  train/val token tensors (the first `train_split` of the tokens is train, the rest val). Each
  split must hold at least `context_length + 1` tokens.
- cl100k_base ids are computed once per text and cached as .npy in a cache folder (written
  atomically; a damaged file is ignored and rewritten). char and byte need no cache.
- `get_batch(...)` draws (x, y) int64 (B, T) batches where y is x shifted left by one token.
- Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from minigpt.errors import ConfigError, DataError
from minigpt.tokenizer import KINDS, Cl100kTokenizer, Tokenizer, fit_tokenizer, load_cl100k

TEXT_SUFFIXES = (".txt", ".md", ".csv")
BUILTIN_PREFIX = "builtin:"
# Texts longer than this are tokenized in chunks, with progress reports.
BIG_TEXT_CHARS = 4_000_000
CHUNK_CHARS = 1_000_000

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Corpus:
    """A tokenized corpus: the tokenizer and the train/val token ids (1-D int64 tensors)."""

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


def _read_text_file(path: Path) -> str:
    """Read one UTF-8 text file with universal newlines, as `open(path).read()` would."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror}); check its permissions") from e
    if b"\x00" in data:
        raise DataError(
            f"{path} looks binary (it contains NUL bytes); data.path needs UTF-8 text"
            " (if it is UTF-16, save it as UTF-8)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path}: not valid UTF-8 at byte {e.start} (line {line}); save it as UTF-8"
        ) from e
    # Why: editors on Windows add a BOM and CRLF; text-mode reading would drop/normalise them.
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


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
    if file.suffix.lower() not in TEXT_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {file.suffix or '(no extension)'!r}; data.path reads"
            f" {', '.join(TEXT_SUFFIXES)} files or a folder of them"
        )
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


def _encode_cl100k(text: str, progress: Progress | None) -> np.ndarray:
    """Raw cl100k ids of text, shape (N,) int64; big texts in parallel chunks with progress."""
    enc = load_cl100k()
    if len(text) <= BIG_TEXT_CHARS:
        return np.asarray(enc.encode_ordinary(text), dtype=np.int64)
    chunks = _split_at_newlines(text, CHUNK_CHARS)
    threads = max(1, min(8, os.cpu_count() or 1))
    parts, done = [], 0
    for first in range(0, len(chunks), threads):
        group = chunks[first : first + threads]
        # tiktoken releases the GIL while encoding, so threads run the chunks in parallel.
        parts += [np.asarray(ids, dtype=np.int64) for ids in enc.encode_ordinary_batch(group)]
        done += sum(map(len, group))
        if progress is not None:
            progress("tokenizing", done / len(text))
    return np.concatenate(parts)


def _read_cache(path: Path, dtype: type, n_vocab: int, max_len: int) -> np.ndarray | None:
    """Cached ids if the file is intact and plausible, else None (missing or damaged)."""
    try:
        ids = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if ids.dtype != dtype or ids.ndim != 1 or not 0 < len(ids) <= max_len:
        return None
    return ids if int(ids.max()) < n_vocab else None


def _write_cache(path: Path, ids: np.ndarray) -> None:
    """Write ids atomically: a crash mid-write never leaves a half file under the real name."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, ids)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        # Why: the cache only saves time; a read-only or full disk must not stop training.
        return


def _cached_cl100k_ids(text: str, cache_dir: Path, progress: Progress | None) -> np.ndarray:
    """Raw cl100k ids of text, from the cache when possible, else encoded and cached."""
    n_vocab = load_cl100k().n_vocab
    # uint32 because cl100k ids exceed 65535; uint16 would do for an id space that fits.
    dtype = np.uint16 if n_vocab <= 1 << 16 else np.uint32
    data = text.encode("utf-8")
    path = cache_dir / f"cl100k_base-{hashlib.sha256(data).hexdigest()}.npy"
    ids = _read_cache(path, dtype, n_vocab, max_len=len(data))
    if ids is None:
        ids = _encode_cl100k(text, progress).astype(dtype)
        _write_cache(path, ids)
    return ids


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
    """Load, tokenize (via the cache for cl100k) and split a corpus per the [data] settings.

    `fitted` is a tokenizer to reuse instead of fitting one to the text: a
    resumed run must keep the vocabulary its checkpoint was trained with.
    """
    if tokenizer not in KINDS:
        raise ConfigError(
            f"data.tokenizer: unknown tokenizer {tokenizer!r}; choose one of {', '.join(KINDS)}"
        )
    if not 0.0 < train_split < 1.0:
        raise ConfigError(f"data.train_split must be between 0 and 1, got {train_split}")
    text, name = load_text(path)
    raw = None
    if tokenizer == "cl100k_base":
        folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        raw = _cached_cl100k_ids(text, folder, progress)
    if fitted is None:
        tok, ids = fit_tokenizer(tokenizer, text, compact_vocab, cl100k_ids=raw)
    elif isinstance(fitted, Cl100kTokenizer) and raw is not None:
        tok, ids = fitted, fitted.from_cl100k_ids(raw)
    else:
        tok, ids = fitted, fitted.encode_array(text)
    data = torch.from_numpy(ids)  # (N,) int64
    n_train = int(train_split * len(data))
    train, val = data[:n_train], data[n_train:]
    _check_split("train", len(train), context_length, "a larger")
    _check_split("val", len(val), context_length, "a smaller")
    return Corpus(tokenizer=tok, train=train, val=val, name=name, num_tokens=len(data))


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

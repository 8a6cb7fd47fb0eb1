"""The token cache: a corpus's token ids, tokenized once and kept on disk.

Contract:
- `tokenize_corpus(...)` gives the tokenizer (fitted to the text, or the one passed in) and the
  corpus's ids as a 1-D array; `default_cache_dir()` is where caches go unless told otherwise.
- Folders, builtins and files up to STREAM_BYTES are read whole: their ids are int64 in memory;
  the full cl100k_base ids and a compact vocabulary's kept ids are cached per text (sha256) as
  .npy in the cache folder.
- A single file over STREAM_BYTES is streamed (`corpus_text.stream_text`), tokenized piece by
  piece into a token file in the cache folder, and memory-mapped: its ids are uint8/uint16/uint32
  (the smallest that holds the vocabulary) views of that file, so memory stays bounded whatever
  the corpus size. The ids equal those of reading the file whole (cl100k: unless MAX_TAIL_CHARS
  characters pass without a line break to cut at). There is one token file per file path and
  tokenizer variant, reused while the file's size and mtime are unchanged; a stale, truncated or
  damaged one is rebuilt in place. Each pass reports `progress(stage, fraction)`: "scanning"
  (fitting a char vocabulary), "tokenizing", "fitting the vocabulary" (each pass of
  `tokenizer.fit_compact`: a few, each from 0 to 1), "compacting" (writing the compact ids).
- Every cache file is written atomically (minigpt.atomic: temp file, fsync, rename).
- Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import tiktoken
import torch

from minigpt.atomic import write_atomic
from minigpt.corpus_text import Progress, big_file, load_text, stream_text
from minigpt.errors import DataError, TokenizerError
from minigpt.tokenizer import (
    KEEP_MIN_COUNT,
    ByteTokenizer,
    CharTokenizer,
    Cl100kTokenizer,
    CorpusEncoder,
    Tokenizer,
    code_points,
    fit_compact,
    fit_tokenizer,
    load_cl100k,
    tokenizer_from_state,
)

# Texts longer than this are tokenized in chunks, with progress reports.
BIG_TEXT_CHARS = 4_000_000
CHUNK_CHARS = 1_000_000
# Streamed cl100k text is cut at line breaks; a tail with none this long is cut where it stands.
MAX_TAIL_CHARS = 8 << 20
# How a token file's own vocabulary was fitted; one fitted another way (an older compact
# rule, another KEEP_MIN_COUNT) is fitted again rather than reused for a new run.
OWN_FIT = f"restricted/{KEEP_MIN_COUNT}"
# Token files are read back this many bytes at a time.
READ_BYTES = 8 << 20


def tokenize_corpus(
    path: str,
    kind: str,
    compact_vocab: bool,
    fitted: Tokenizer | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> tuple[Tokenizer, np.ndarray, str]:
    """The corpus at path as token ids, through the caches: (tokenizer, (N,) ids, display name).

    `fitted` is a tokenizer to reuse instead of fitting one to the text (a resumed run's).
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if (file := big_file(path)) is None:
        return _tokenize_text(path, kind, compact_vocab, fitted, folder, progress)
    kind = kind if fitted is None else fitted.kind
    tokenizer, ids = _stream_corpus(file, path, kind, compact_vocab, fitted, folder, progress)
    return tokenizer, ids, file.name


def default_cache_dir() -> Path:
    """$MINIGPT_CACHE, else ./data/cache when ./data exists, else ~/.cache/minigpt-tui."""
    env = os.environ.get("MINIGPT_CACHE")
    if env:
        return Path(env).expanduser()
    if Path("data").is_dir():
        return Path("data") / "cache"
    return Path.home() / ".cache" / "minigpt-tui"


def _tokenize_text(
    path: str,
    kind: str,
    compact_vocab: bool,
    fitted: Tokenizer | None,
    cache_dir: Path,
    progress: Progress | None,
) -> tuple[Tokenizer, np.ndarray, str]:
    """Read a corpus whole and tokenize it in memory: (tokenizer, int64 ids, display name)."""
    text, name = load_text(path, cache_dir=cache_dir, progress=progress)
    if kind != "cl100k_base":
        if fitted is None:
            return (*fit_tokenizer(kind, text), name)
        return fitted, fitted.encode_array(text), name
    encode = _cl100k_encoder(text, cache_dir, progress)
    if fitted is None:
        return (*_fit_cl100k(text, compact_vocab, encode, cache_dir), name)
    if isinstance(fitted, Cl100kTokenizer):
        return fitted, fitted.ids_from_encoding(encode(fitted.encoding)), name
    return fitted, fitted.encode_array(text), name


def _fit_cl100k(
    text: str, compact_vocab: bool, encode: CorpusEncoder, cache_dir: Path
) -> tuple[Cl100kTokenizer, np.ndarray]:
    """Fit cl100k to a text read whole; a compact vocabulary's kept ids are cached per text."""
    n_vocab = load_cl100k().n_vocab
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    path = cache_dir / f"cl100k_base-keep{KEEP_MIN_COUNT}-{digest}.npy"
    keep = _read_cache(path, _id_dtype(n_vocab), n_vocab, n_vocab) if compact_vocab else None
    if keep is not None:
        bpe = Cl100kTokenizer(keep)
        return bpe, bpe.ids_from_encoding(encode(bpe.encoding))
    tokenizer, ids = fit_tokenizer("cl100k_base", text, compact_vocab, encode)
    assert isinstance(tokenizer, Cl100kTokenizer)
    if tokenizer.keep_ids is not None:
        _write_cache(path, tokenizer.keep_ids.astype(_id_dtype(n_vocab)))
    return tokenizer, ids


def _cl100k_encoder(text: str, cache_dir: Path, progress: Progress | None) -> CorpusEncoder:
    """The text's ids under a cl100k BPE: the full one's through the cache, others encoded."""

    def encode(encoding: tiktoken.Encoding) -> np.ndarray:
        """The text's ids under encoding."""
        if encoding is load_cl100k():
            return _cached_cl100k_ids(text, cache_dir, progress)
        return _encode_cl100k(text, progress, encoding, "compacting")

    return encode


def _cached_cl100k_ids(text: str, cache_dir: Path, progress: Progress | None) -> np.ndarray:
    """Raw cl100k ids of text, from the cache when possible, else encoded and cached."""
    n_vocab = load_cl100k().n_vocab
    dtype = _id_dtype(n_vocab)  # uint32: cl100k ids exceed 65535
    data = text.encode("utf-8")
    path = cache_dir / f"cl100k_base-{hashlib.sha256(data).hexdigest()}.npy"
    ids = _read_cache(path, dtype, n_vocab, max_len=len(data))
    if ids is None:
        ids = _encode_cl100k(text, progress, load_cl100k(), "tokenizing").astype(dtype)
        _write_cache(path, ids)
    return ids


def _encode_cl100k(
    text: str, progress: Progress | None, encoding: tiktoken.Encoding, stage: str
) -> np.ndarray:
    """Ids of text under a cl100k BPE, shape (N,) int64; big texts in parallel chunks with
    `stage` progress."""
    if len(text) <= BIG_TEXT_CHARS:
        return np.asarray(encoding.encode_ordinary(text), dtype=np.int64)
    parts, done = [], 0
    for ids, chars in _encode_cl100k_chunks(_split_at_newlines(text, CHUNK_CHARS), encoding):
        parts.append(ids)
        done += chars
        if progress is not None:
            progress(stage, done / len(text))
    return np.concatenate(parts)


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


def _encode_cl100k_chunks(
    chunks: list[str], enc: tiktoken.Encoding
) -> Iterator[tuple[np.ndarray, int]]:
    """Ids of chunks under a cl100k BPE, a few in parallel: (int64 ids, characters) per group."""
    threads = max(1, min(8, os.cpu_count() or 1))
    for first in range(0, len(chunks), threads):
        group = chunks[first : first + threads]
        # tiktoken releases the GIL while encoding, so threads run the chunks in parallel.
        parts = [np.asarray(ids, dtype=np.int64) for ids in enc.encode_ordinary_batch(group)]
        yield np.concatenate(parts), sum(map(len, group))


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


def _write_cache(path: Path, ids: np.ndarray) -> None:
    """Write ids as .npy atomically; a failure only loses the cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: np.save(f, ids))
    except OSError:
        # Why: the cache only saves time; a read-only or full disk must not stop training.
        return


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
        return stream_text(file, shown, stage, progress)

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
        found = raw.build(full, True, _encode_cl100k_texts(texts("tokenizing"), full.encoding))
        if not compact:
            return found

    def ids_under(encoding: tiktoken.Encoding, stage: str) -> Iterator[np.ndarray]:
        """One pass of the file's ids under encoding: the raw token file's for the full BPE."""
        if encoding is full.encoding:
            return _read_ids(raw.path, np.dtype(np.uint32), stage, progress)
        return _encode_cl100k_texts(texts(stage), encoding)

    def counts_under(encoding: tiktoken.Encoding) -> np.ndarray:
        """How often the file uses each cl100k id under encoding, shape (n_vocab,)."""
        counts = np.zeros(full.vocab_size, dtype=np.int64)
        for ids in ids_under(encoding, "fitting the vocabulary"):
            counts += np.bincount(ids, minlength=full.vocab_size)
        return counts

    bpe = tokenizer if isinstance(tokenizer, Cl100kTokenizer) else fit_compact(counts_under)
    mapped = (bpe.ids_from_encoding(ids) for ids in ids_under(bpe.encoding, "compacting"))
    return target.build(bpe, own, mapped)


@dataclass(frozen=True)
class _TokenFile:
    """A token file in the cache folder (raw ids) with its JSON sidecar (what they mean).

    The sidecar holds the source file's path, size and mtime, the id count and dtype, the
    tokenizer state and `own`: whether that tokenizer was fitted to this very file (then
    `fit`: OWN_FIT when it was fitted).
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
            if tokenizer is None and meta["own"] is True and meta.get("fit") == OWN_FIT:
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
        meta |= {"fit": OWN_FIT} if own else {}
        try:
            # The old sidecar goes first, so a crash never pairs it with new ids.
            self.sidecar.unlink(missing_ok=True)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            meta |= self.source | {"count": write_atomic(self.path, write)}
            write_atomic(self.sidecar, lambda f: f.write(json.dumps(meta).encode()))
        except OSError as e:
            raise DataError(
                f"{self.path}: cannot write the token file ({e.strerror}); set MINIGPT_CACHE to"
                " a writable folder with room for it"
            ) from e
        return self._map(tokenizer, meta["count"])


def _json_state(tokenizer: Tokenizer) -> dict[str, Any]:
    """The tokenizer's state_dict with tensors as lists, to store as JSON."""
    state = tokenizer.state_dict()
    return {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


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


def _encode_cl100k_texts(texts: Iterable[str], enc: tiktoken.Encoding) -> Iterator[np.ndarray]:
    """Ids of streamed text under a cl100k BPE, equal to encoding the whole text at once.

    Pieces are cut only where `_split_at_newlines` would cut; the tail after the last such
    cut waits for the next piece. A tail that finds no cut in MAX_TAIL_CHARS characters
    (text without line breaks) is cut where it stands, and its ids may differ there.
    """
    tail = ""
    for text in texts:
        # Cuts inside text stay valid with the tail in front: no need to copy tail + text.
        chunks = _split_at_newlines(text, CHUNK_CHARS)
        chunks[0] = tail + chunks[0]
        tail = chunks.pop()
        if len(tail) > MAX_TAIL_CHARS:
            chunks += _slices(tail, CHUNK_CHARS)
            tail = ""
        for ids, _ in _encode_cl100k_chunks(chunks, enc):
            yield ids
    for ids, _ in _encode_cl100k_chunks([tail] if tail else [], enc):
        yield ids


def _slices(text: str, size: int) -> Iterator[str]:
    """Cut text every size characters, wherever that falls."""
    return (text[start : start + size] for start in range(0, len(text), size))


def _read_ids(
    path: Path, dtype: np.dtype, stage: str, progress: Progress | None
) -> Iterator[np.ndarray]:
    """A token file's ids in pieces, by plain reads (mapping it would grow RSS to its size)."""
    total, done = max(1, path.stat().st_size), 0
    with open(path, "rb") as f:
        while data := f.read(READ_BYTES // dtype.itemsize * dtype.itemsize):
            yield np.frombuffer(data, dtype=dtype)
            done += len(data)
            if progress is not None:
                progress(stage, done / total)

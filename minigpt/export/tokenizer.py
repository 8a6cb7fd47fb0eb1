"""minigpt's tokenizers as Hugging Face tokenizers: the files `AutoTokenizer` loads.

Contract:
- `save_hf_tokenizer(tokenizer, folder, context_length)` writes tokenizer.json and
  tokenizer_config.json (a `PreTrainedTokenizerFast` over the `tokenizers` library) that
  encode any text the minigpt tokenizer encodes to the same ids, and decode those ids back
  to the same text, with no special tokens added.
- char: one WordLevel token per character, split one code point at a time; a character
  outside the vocabulary is refused, as minigpt refuses it. byte: GPT-2's byte-level
  alphabet, one token per byte value, no merges. cl100k_base over its full id space: the
  BPE with merges derived from tiktoken's ranks (the same construction as transformers'
  own tiktoken converter), the special tokens as ordinary vocabulary (minigpt encodes
  their text as plain text), and a whole pre-token that is a token taken as it is, as
  tiktoken does (`ignore_merges`). cl100k leaves ids 100256 and 100261-100275 unassigned:
  each holds a placeholder token that no text encodes to and that decodes to U+FFFD, as
  minigpt decodes an unassigned id. A compact cl100k vocabulary (the restricted rule) is
  the same BPE over the kept tokens only, at their dense ids: every split of a kept token
  into two kept tokens is a merge, ranked by the cl100k rank of the token it makes, so a
  merge that would make a token outside the set never happens, as in tiktoken.
- A compact vocabulary of the older spelled rule is refused (ExportError, one line): it
  encodes with the full BPE and then spells a token outside the set in single bytes, a
  second pass that no `tokenizers` pipeline has.
- The `tokenizers` and `transformers` packages are imported here only when called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from minigpt.errors import ExportError
from minigpt.export.folder import needs_extra
from minigpt.tokenizer import (
    CL100K_NUM_MERGEABLE,
    CL100K_PATTERN,
    CL100K_SPECIAL_TOKENS,
    CharTokenizer,
    Cl100kTokenizer,
    Tokenizer,
    load_cl100k,
)

# transformers 5 names its fast tokenizer class TokenizersBackend in what it saves, a name
# transformers 4 does not know; both load the name they share.
TOKENIZER_CLASS = "PreTrainedTokenizerFast"
# A BPE vocabulary with holes makes `tokenizers` warn "your vocabulary could be corrupted!"
# each time it is serialized (twice an export; before 0.23 it prints it on stdout), so each
# of cl100k's unassigned ids holds a placeholder: U+FFFD and the id. No text encodes to
# one, since U+FFFD is not in the byte-level alphabet every pre-token is spelled in.
UNASSIGNED = "\ufffd{}"
UNASSIGNED_PATTERN = "\ufffd[0-9]+"


def check_exportable(tokenizer: Tokenizer) -> None:
    """Raise ExportError when no Hugging Face tokenizer reproduces this one exactly."""
    if isinstance(tokenizer, Cl100kTokenizer) and tokenizer.rule == "spelled":
        raise ExportError(
            "this run's compact vocabulary is of the older kind that spells unkept tokens in"
            " bytes, which no Hugging Face tokenizer reproduces; train a new run (its compact"
            " vocabulary exports exactly) or one with --set data.compact_vocab=false"
        )


def save_hf_tokenizer(tokenizer: Tokenizer, folder: Path, context_length: int) -> None:
    """Write the tokenizer files for `tokenizer` into folder (see the module docstring)."""
    check_exportable(tokenizer)
    (transformers,) = needs_extra("transformers")
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=_backend(tokenizer),
        clean_up_tokenization_spaces=False,  # would drop the space before "." and the like
        model_max_length=context_length,
    )
    fast.save_pretrained(str(folder))
    settings = folder / "tokenizer_config.json"
    config = json.loads(settings.read_text(encoding="utf-8"))
    config["tokenizer_class"] = TOKENIZER_CLASS
    settings.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _backend(tokenizer: Tokenizer) -> Any:
    """The `tokenizers.Tokenizer` that encodes and decodes as `tokenizer` does."""
    (tk,) = needs_extra("tokenizers")
    if isinstance(tokenizer, CharTokenizer):
        vocab = {char: index for index, char in enumerate(tokenizer.chars)}
        backend = tk.Tokenizer(tk.models.WordLevel(vocab, unk_token="[UNK]"))
        # Each code point on its own (Oniguruma's "." would miss a newline).
        backend.pre_tokenizer = tk.pre_tokenizers.Split(tk.Regex(r"[\s\S]"), behavior="isolated")
        backend.decoder = tk.decoders.Fuse()  # join the characters without spaces
        return backend
    if tokenizer.kind == "byte":
        alphabet = _byte_alphabet()
        vocab = {alphabet[b]: b for b in range(256)}
        merges: list[tuple[str, str]] = []
        pattern = None
    else:
        assert isinstance(tokenizer, Cl100kTokenizer)
        vocab, merges = _cl100k_vocab_and_merges(tokenizer.keep_ids)
        # Oniguruma reads "{1,3}+" as "({1,3})+", one or more runs of up to three digits;
        # tiktoken's possessive "{1,3}+" matches up to three, as plain "{1,3}" does here.
        pattern = CL100K_PATTERN.replace(r"\p{N}{1,3}+", r"\p{N}{1,3}")
    backend = tk.Tokenizer(tk.models.BPE(vocab, merges, ignore_merges=True))
    byte_level = tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pattern is None:
        backend.pre_tokenizer = byte_level
        backend.decoder = tk.decoders.ByteLevel()
        return backend
    # transformers 4.57.3-4.57.6 warn of "an incorrect regex pattern" when they load this
    # from a folder whose config.json they wrote: their Mistral check takes in any tokenizer
    # of over 100,000 tokens with a pre-tokenizer (huggingface/transformers#44031), and only
    # a config.json written by transformers 5 (or by 4.57.2 or older) lets it pass. Its way
    # out, fix_mistral_regex=True, puts Mistral's split in place of this one; the vocabulary
    # and this split are what keep the tokenizer exact, and config.json's
    # transformers_version is its writer's: no file written here avoids the warning.
    split = tk.pre_tokenizers.Split(tk.Regex(pattern), behavior="isolated")
    backend.pre_tokenizer = tk.pre_tokenizers.Sequence([split, byte_level])
    # A placeholder becomes U+FFFD, which ByteLevel, finding it outside its alphabet, decodes
    # to its UTF-8 bytes: EF BF BD, the bytes minigpt puts in for an unassigned id.
    unassigned = tk.decoders.Replace(tk.Regex(UNASSIGNED_PATTERN), "\ufffd")
    backend.decoder = tk.decoders.Sequence([unassigned, tk.decoders.ByteLevel()])
    return backend


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte value, as ByteLevel maps them."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    others = [b for b in range(256) if b not in printable]
    return {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}


def _cl100k_vocab_and_merges(
    keep: np.ndarray | None,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The byte-level vocabulary (each token at its minigpt id) and BPE merges of cl100k_base,
    whole (keep None) or over the kept cl100k ids only, derived from cl100k's ranks.

    A merge (a, b) exists for every split of a token into two tokens of the vocabulary;
    merges rank by the cl100k rank of the token they make, then by the ranks of their halves.
    """
    enc = load_cl100k()
    kept = range(CL100K_NUM_MERGEABLE) if keep is None else keep.tolist()
    ranks = {enc.decode_single_token_bytes(i): i for i in kept}
    dense = {rank: index for index, rank in enumerate(kept)}  # cl100k id -> minigpt id
    alphabet = _byte_alphabet()

    def text(token: bytes) -> str:
        """A token's bytes in the byte-level alphabet."""
        return "".join(alphabet[b] for b in token)

    found = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in ranks and right in ranks:
                found.append((rank, ranks[left], ranks[right], left, right))
    found.sort()
    vocab = {text(token): dense[rank] for token, rank in ranks.items()}
    merges = [(text(left), text(right)) for *_, left, right in found]
    if keep is not None:
        return vocab, merges
    vocab |= CL100K_SPECIAL_TOKENS  # "<|endoftext|>" is printable ASCII: it spells itself
    assigned = set(vocab.values())
    vocab |= {UNASSIGNED.format(i): i for i in range(enc.n_vocab) if i not in assigned}
    return vocab, merges

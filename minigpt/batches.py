"""The lesson's batches: random (x, y) windows of a corpus's train or val token ids.

Contract:
- `get_batch(...)` draws (x, y) int64 (B, T) batches where y is x shifted left by one token.
- `prepare_data(...)` turns the `[data]` settings into a `Corpus`: the tokenizer plus 1-D
  train/val token tensors (the first `train_split` of the tokens is train, the rest val). Each
  split must hold at least `context_length + 1` tokens. Reading the text is `corpus_text`'s
  job, tokenizing and caching the ids `token_cache`'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from minigpt.corpus_text import Progress
from minigpt.errors import ConfigError, DataError
from minigpt.token_cache import tokenize_corpus
from minigpt.tokenizer import KINDS, Tokenizer


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
    """Load, tokenize and split a corpus per the [data] settings.

    `fitted` is a tokenizer to reuse instead of fitting one to the text: a
    resumed run must keep the vocabulary its checkpoint was trained with.
    """
    if tokenizer not in KINDS:
        raise ConfigError(
            f"data.tokenizer: unknown tokenizer {tokenizer!r}; choose one of {', '.join(KINDS)}"
        )
    if not 0.0 < train_split < 1.0:
        raise ConfigError(f"data.train_split must be between 0 and 1, got {train_split}")
    tok, ids, name = tokenize_corpus(path, tokenizer, compact_vocab, fitted, cache_dir, progress)
    data = torch.from_numpy(ids)  # (N,): int64 in memory, or a view of the mapped token file
    n_train = int(train_split * len(data))
    train, val = data[:n_train], data[n_train:]
    _check_split("train", len(train), context_length, "a larger")
    _check_split("val", len(val), context_length, "a smaller")
    return Corpus(tokenizer=tok, train=train, val=val, name=name, num_tokens=len(data))


def _check_split(split: str, n: int, context_length: int, fix: str) -> None:
    """Raise DataError unless a split can yield one (context_length + 1)-token window."""
    if n < context_length + 1:
        raise DataError(
            f"the {split} split has {n} tokens but needs at least context_length + 1 ="
            f" {context_length + 1}; use a longer corpus, a smaller model.context_length,"
            f" or {fix} data.train_split"
        )

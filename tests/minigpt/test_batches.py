"""Tests for minigpt.batches: get_batch's windows and prepare_data's train/val split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from minigpt.batches import get_batch, prepare_data
from minigpt.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("cache_dir")


def test_get_batch_shape_dtype_and_shift() -> None:
    """x and y are int64 (B, T), y is x shifted by one, and each row is a slice of data."""
    data = torch.arange(100, dtype=torch.int64) * 7
    x, y = get_batch(data, batch_size=5, context_length=12)
    assert x.shape == y.shape == (5, 12)
    assert x.dtype == y.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:])
    for row_x, row_y in zip(x, y, strict=True):
        start = int(row_x[0]) // 7
        assert torch.equal(row_x, data[start : start + 12])
        assert torch.equal(row_y, data[start + 1 : start + 13])


def test_get_batch_widens_int32_and_reaches_the_last_token() -> None:
    """int32 data still gives int64 batches, and a window can end on the final token."""
    data = torch.arange(5, dtype=torch.int32)
    x, y = get_batch(
        data, batch_size=64, context_length=4, generator=torch.Generator().manual_seed(0)
    )
    assert x.dtype == y.dtype == torch.int64
    assert torch.equal(y[0], torch.tensor([1, 2, 3, 4]))


def test_get_batch_deterministic_with_seeded_generator() -> None:
    """The same seed gives the same batch."""
    data = torch.arange(1000)
    first = get_batch(data, 8, 16, generator=torch.Generator().manual_seed(42))
    second = get_batch(data, 8, 16, generator=torch.Generator().manual_seed(42))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_get_batch_too_short_data() -> None:
    """Data shorter than context_length + 1 raises DataError."""
    with pytest.raises(DataError, match="context_length"):
        get_batch(torch.arange(8), 2, 8)


def test_get_batch_on_uint16_and_uint32_keeps_large_ids() -> None:
    """Ids past the signed range of uint16/uint32 data come out unchanged in int64 batches."""
    for dtype, top in [(np.uint16, 65535), (np.uint32, 4_000_000_000)]:
        data = torch.from_numpy(np.array([top, top - 1, 1, top], dtype=dtype))
        x, y = get_batch(data, 8, 3, generator=torch.Generator().manual_seed(0))
        assert x[0].tolist() == [top, top - 1, 1] and y[0].tolist() == [top - 1, 1, top]


@pytest.mark.parametrize("tokenizer", ["cl100k_base", "char", "byte"])
def test_prepare_splits_and_round_trips(mixed_corpus: Path, tokenizer: str) -> None:
    """prepare_data splits 90/10 into int64 tensors that decode back to the corpus."""
    corpus = prepare_data(str(mixed_corpus), tokenizer, True, 0.9, 8)
    assert corpus.train.dtype == corpus.val.dtype == torch.int64
    assert corpus.num_tokens == len(corpus.train) + len(corpus.val)
    assert len(corpus.train) == int(0.9 * corpus.num_tokens)
    joined = torch.cat([corpus.train, corpus.val])
    assert corpus.tokenizer.decode(joined) == mixed_corpus.read_text(encoding="utf-8")
    assert corpus.name == "corpus.txt"


def test_prepare_split_too_short_names_numbers(mixed_corpus: Path) -> None:
    """A split shorter than context_length + 1 names the split, its size and the need."""
    corpus = prepare_data(str(mixed_corpus), "cl100k_base", True, 0.9, 8)
    with pytest.raises(DataError) as info:
        prepare_data(str(mixed_corpus), "cl100k_base", True, 0.9, len(corpus.val))
    message = str(info.value)
    assert f"val split has {len(corpus.val)} tokens" in message
    assert f"context_length + 1 = {len(corpus.val) + 1}" in message
    assert "model.context_length" in message and "data.train_split" in message


def test_prepare_rejects_bad_settings(mixed_corpus: Path) -> None:
    """An unknown tokenizer or a train_split outside (0, 1) is a ConfigError."""
    with pytest.raises(ConfigError):
        prepare_data(str(mixed_corpus), "gpt2", True, 0.9, 8)
    with pytest.raises(ConfigError):
        prepare_data(str(mixed_corpus), "cl100k_base", True, 1.0, 8)

"""Fixtures for every test: a private token cache and a small corpus."""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.warm import ForkServer

# torch threads for every config the tests write (train.threads). One thread is the
# plain `make test`; `make test-numerics` reruns the `trains` tests with 2, whose sums
# split differently and so round differently.
THREADS = int(os.environ.get("MINIGPT_TEST_THREADS", "1"))


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep token caches out of the user's folders."""
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path_factory.getbasetemp() / "token-cache"))


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    """A small, very learnable text file."""
    lines = [f"the cat sat on mat number {i % 7}.\n" for i in range(400)]
    path = tmp_path / "corpus.txt"
    path.write_text("".join(lines), encoding="utf-8")
    return path


TINY = f"""
[model]
context_length = 16
d_model = 32
num_heads = 2
num_blocks = 1
dropout = 0.1
[train]
batch_size = 4
max_iters = 100000
eval_interval = 25
eval_iters = 2
checkpoint_interval = 10
threads = {THREADS}
[sample]
at_eval = false
[data]
tokenizer = "char"
"""


@pytest.fixture
def config_file(tmp_path: Path, corpus_file: Path) -> Path:
    """A tiny, fast engine config on the test corpus (char tokenizer, one block)."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY + f"path = {json.dumps(str(corpus_file))}\n")
    return path


@pytest.fixture(scope="session")
def fork_server() -> Iterator[ForkServer]:
    """One warm interpreter that forks every test's engines, where the kernel allows
    (see tests/warm.py)."""
    server = ForkServer()
    yield server
    server.close()

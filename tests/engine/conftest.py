"""Engine fixtures: tiny configs the tests make themselves, and engines started fast."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minigpt import client as client_module
from minigpt.client import Client
from minigpt.config import Config, apply_values
from tests.conftest import THREADS
from tests.warm import ForkServer


def _tiny_config(corpus: Path, **values: object) -> Config:
    """A seconds-fast config on `corpus`; values override dotted keys."""
    base = {
        "model.context_length": 16,
        "model.d_model": 32,
        "model.num_heads": 2,
        "model.num_blocks": 2,
        "model.dropout": 0.1,
        "train.batch_size": 8,
        "train.learning_rate": 3e-3,
        "train.min_lr": 3e-4,
        "train.warmup_iters": 5,
        "train.max_iters": 40,
        "train.eval_interval": 20,
        "train.eval_iters": 4,
        "train.checkpoint_interval": 20,
        "train.threads": THREADS,
        "data.path": str(corpus),
        "data.tokenizer": "char",
        "sample.at_eval": False,  # tests that want samples at evals ask for them
    }
    return apply_values(Config(), base | values)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point MINIGPT_CACHE at a fresh tmp folder so no test touches a real cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MINIGPT_CACHE", str(folder))
    return folder


@pytest.fixture
def mixed_corpus(tmp_path: Path) -> Path:
    """A small corpus of a few hundred tokens: ASCII, CJK and an emoji (multi-byte UTF-8)."""
    path = tmp_path / "corpus.txt"
    path.write_text("It was the best of times, it was the worst of times; 你好 🙂.\n" * 40, "utf-8")
    return path


@pytest.fixture
def tiny_config() -> Callable[..., Config]:
    """Factory for seconds-fast configs: tiny_config(corpus, **{"train.max_iters": 20})."""
    return _tiny_config


@pytest.fixture
def engines(
    fork_server: ForkServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Client]]:
    """Start detached engines through Client.spawn: engines(run_dir, *engine_args);
    forked warm where tests/warm.py can, and all killed at the end, whatever the test did."""
    monkeypatch.setattr(client_module, "subprocess", fork_server.subprocess_module())
    clients: list[Client] = []

    def start(run_dir: Path, *engine_args: str) -> Client:
        client = Client.spawn(run_dir, list(engine_args), timeout=60)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
        if client.process and client.process.poll() is None:
            client.process.kill()
            client.process.wait()

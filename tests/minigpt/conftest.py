"""Engine fixtures: the tiny config tuned to train in-process, and engines started fast."""

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minigpt.config import Config
from minigpt.service import client as client_module
from minigpt.service.client import Client
from tests.tiny import tiny_config
from tests.warm import ForkServer

# What the in-process training tests were tuned on (tests marked `trains` assert that the
# loss falls within these 40 steps): TINY with two blocks, batch 8 and a faster schedule.
TRAINS: dict[str, object] = {
    "model.num_blocks": 2,
    "train.batch_size": 8,
    "train.learning_rate": 3e-3,
    "train.min_lr": 3e-4,
    "train.warmup_iters": 5,
    "train.max_iters": 40,
    "train.eval_interval": 20,
    "train.eval_iters": 4,
    "train.checkpoint_interval": 20,
}


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


@pytest.fixture(name="tiny_config")
def trains_config() -> Callable[..., Config]:
    """tests/tiny.py's builder with TRAINS under the values: tiny_config(corpus, **{...})."""
    return functools.partial(tiny_config, **TRAINS)


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

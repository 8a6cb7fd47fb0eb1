"""Fixtures for every test: a private token cache, a small corpus, the tiny config, and
the check that every test training a model in-process is marked `trains`."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from minigpt.config import config_to_toml
from minigpt.train import Trainer
from tests.tiny import ENGINE, tiny_config
from tests.warm import ForkServer

# How many Trainers this process built since the current test's setup began.
_trainers_built = 0


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start each test's count before any of its fixtures (module-scoped ones too) run."""
    global _trainers_built
    _trainers_built = 0


@pytest.fixture(scope="session", autouse=True)
def _count_trainers() -> Iterator[None]:
    """Note every Trainer this process builds."""
    build = Trainer.__init__

    def counted(self: Trainer, *args: Any, **kwargs: Any) -> None:  # Trainer's, passed on
        global _trainers_built
        _trainers_built += 1
        build(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "__init__", counted)
        yield


@pytest.fixture(autouse=True)
def _training_is_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that built a Trainer in-process without the `trains` mark, which would
    leave it out of `make test-numerics`."""
    yield
    if _trainers_built and request.node.get_closest_marker("trains") is None:
        pytest.fail(
            f"{request.node.nodeid} builds a Trainer in-process but is not marked: add "
            "@pytest.mark.trains (or pytestmark = pytest.mark.trains for a whole module)",
            pytrace=False,
        )


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


@pytest.fixture
def config_file(tmp_path: Path, corpus_file: Path) -> Path:
    """The tiny config (tests/tiny.py) on the test corpus, as engines run it (ENGINE)."""
    path = tmp_path / "tiny.toml"
    path.write_text(config_to_toml(tiny_config(corpus_file, **ENGINE)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def fork_server() -> Iterator[ForkServer]:
    """One warm interpreter that forks every test's engines, where the kernel allows
    (see tests/warm.py)."""
    server = ForkServer()
    yield server
    server.close()

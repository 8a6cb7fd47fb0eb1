"""The dashboard tests' fixtures: a scripted link, and links to real engines on the tiny config."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minigpt.service import client as client_module
from tests.tui.scripted import FakeEngine, ScriptedLink
from tests.warm import ForkServer
from tui.link import EngineLink


@pytest.fixture
def make_link(
    config_file: Path, tmp_path: Path, fork_server: ForkServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., EngineLink]]:
    """Links to engines on the tiny config, forked warm (tests/warm.py); every engine they
    start is killed at the end."""
    monkeypatch.setattr(client_module, "subprocess", fork_server.subprocess_module())
    links: list[EngineLink] = []

    def build(
        *overrides: str, run: str = "run", config: bool = True, data: str | None = None
    ) -> EngineLink:
        config_path = str(config_file) if config else None
        link = EngineLink.from_options(tmp_path / run, config_path, data, list(overrides))
        links.append(link)
        return link

    yield build
    for link in links:
        _kill(link)


def _kill(link: EngineLink) -> None:
    """Stop the engine a link started, if it still runs."""
    if link.client is not None and link.client.process is not None:
        if link.client.process.poll() is None:
            link.client.process.kill()
        link.client.process.wait()


@pytest.fixture
def scripted(tmp_path: Path) -> ScriptedLink:
    """A link that plays what the test feeds and answers commands as an engine would."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    return ScriptedLink(run_dir, respond=FakeEngine())

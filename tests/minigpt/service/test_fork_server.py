"""The fork server's plain start: without pidfd_open or the child subreaper, the
`engines` fixture starts `python -m minigpt engine` itself, and everything else holds."""

import ctypes
import errno
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from minigpt.events import StepEvent
from minigpt.service.client import Client
from tests import warm
from tests.warm import ForkServer


def _no_pidfd(m: pytest.MonkeyPatch) -> None:
    """An os module without pidfd_open (macOS, Python built without it)."""
    m.delattr(os, "pidfd_open", raising=False)


def _pidfd_enosys(m: pytest.MonkeyPatch) -> None:
    """A kernel older than Linux 5.3: pidfd_open exists but the call fails."""

    def enosys(pid: int, flags: int = 0) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    m.setattr(os, "pidfd_open", enosys, raising=False)


def _no_prctl(m: pytest.MonkeyPatch) -> None:
    """A libc without prctl (macOS)."""
    m.setattr(ctypes, "CDLL", lambda *args, **kwargs: SimpleNamespace())


def _prctl_refused(m: pytest.MonkeyPatch) -> None:
    """A kernel that refuses the child-subreaper prctl (older than Linux 3.4)."""
    m.setattr(ctypes, "CDLL", lambda *args, **kwargs: SimpleNamespace(prctl=lambda *a: -1))


def _asked(m: pytest.MonkeyPatch) -> None:
    """MINIGPT_NO_FORK_SERVER=1, to run the suite with plain starts."""
    m.setenv("MINIGPT_NO_FORK_SERVER", "1")


@pytest.mark.parametrize("unsupport", [_no_pidfd, _pidfd_enosys, _no_prctl, _prctl_refused, _asked])
def test_each_missing_capability_means_a_plain_start(
    unsupport: Callable[[pytest.MonkeyPatch], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Losing either capability, or asking, turns the fork server into plain starts."""
    if not warm.supported():
        pytest.skip("this machine already starts engines plainly")
    unsupport(monkeypatch)
    assert not warm.supported()
    assert ForkServer().subprocess_module() is subprocess


@pytest.fixture
def fork_server() -> Iterator[ForkServer]:
    """The fork server as built on a kernel without pidfd_open (this module's engines)."""
    with pytest.MonkeyPatch.context() as m:
        _no_pidfd(m)
        server = ForkServer()
    yield server
    server.close()


def test_engines_start_train_and_die_without_the_fork_server(
    engines: Callable[..., Client], tmp_path: Path, config_file: Path
) -> None:
    """Client.spawn runs `python -m minigpt engine` itself; the engine trains and is killed."""
    client = engines(tmp_path / "run", "--config", str(config_file), "--start")
    assert isinstance(client.process, subprocess.Popen)
    assert isinstance(client.process.args, list), "Client.spawn gives Popen a list"
    assert client.process.args[1:4] == ["-m", "minigpt", "engine"]
    step = client.wait_for(StepEvent)
    assert isinstance(step, StepEvent) and step.step is not None and step.step >= 1
    client.process.kill()
    assert client.process.wait(30) == -signal.SIGKILL

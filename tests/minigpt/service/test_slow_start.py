"""A slow engine start (a big corpus to tokenize) is waited for while it shows progress."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from minigpt.errors import EngineError
from minigpt.service import client as client_module
from minigpt.service.client import Client

# Stands in for an engine that tokenizes for 3 s, printing progress, then fails.
SLOW_ENGINE = """
import sys, time
for i in range(1, 11):
    print(f"\\rtokenizing: {i * 10:5.1f}%", end="", file=sys.stderr, flush=True)
    time.sleep(0.3)
print("\\nminigpt: error: the corpus ran out", file=sys.stderr, flush=True)
sys.exit(2)
"""


@pytest.fixture
def slow_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Client.spawn starts SLOW_ENGINE instead of the real engine."""
    real_popen = subprocess.Popen

    def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return real_popen([sys.executable, "-c", SLOW_ENGINE], **kwargs)  # Popen's kwargs

    monkeypatch.setattr(subprocess, "Popen", popen)  # the module client.py calls
    monkeypatch.setattr(client_module, "PROGRESS_EVERY_S", 0.0)


def test_progress_keeps_a_slow_start_alive(slow_engine, tmp_path: Path) -> None:
    """With a 1 s timeout, 3 s of progress are waited through and passed on; the
    engine's own error ends the wait, not the timeout."""
    seen: list[str] = []
    with pytest.raises(EngineError, match="the corpus ran out"):
        Client.spawn(tmp_path / "run", timeout=1.0, progress=seen.append)
    assert "tokenizing:  10.0%" in seen and seen[-1] != seen[0]
    assert all(line.startswith("tokenizing:") for line in seen[:-1])

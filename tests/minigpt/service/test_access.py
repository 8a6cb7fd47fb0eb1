"""Another local user can neither reach a run's engine nor read its files."""

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from minigpt.events import CheckpointEvent

pytestmark = pytest.mark.trains

NOBODY = 65534
# What the other user tries; each attempt prints the error it met, or "allowed".
PROBE = """
import json, os, socket, sys
results = {}
def attempt(name, action):
    try:
        action()
        results[name] = "allowed"
    except OSError as error:
        results[name] = type(error).__name__
for path in sys.argv[1:]:
    if path.endswith(".sock"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        attempt(path, lambda: s.connect(path))
    elif os.path.isdir(path):
        attempt(path, lambda: os.listdir(path))
    else:
        attempt(path, lambda: open(path, "rb").read(1))
print(json.dumps(results))
"""


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder anyone may enter (tmp_path is private to its owner, which would hide
    the run dir's own protection)."""
    folder = Path(tempfile.mkdtemp(prefix="minigpt-access-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _as_other_user(*paths: Path) -> dict[str, str]:
    """Run the probe as uid/gid 65534 (nobody) on the paths; what each attempt met."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    assert python, "a system python3 is needed to run the probe as another user"
    result = subprocess.run(
        [python, "-c", PROBE, *map(str, paths)],
        capture_output=True,
        text=True,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
@pytest.mark.parametrize("depth", ["short", "long"])
def test_other_user_cannot_connect_or_read(
    engines, shared_folder: Path, config_file: Path, depth
) -> None:
    """As nobody: connecting to the live engine (also through the private socket folder
    used for long paths) and reading the folder, metrics or checkpoint all fail."""
    run_dir = shared_folder / ("deep-" * 20 if depth == "long" else "") / "run"
    client = engines(run_dir, "--config", str(config_file), "--start")
    client.wait_for(CheckpointEvent)
    socket_file = run_dir / "engine.sock"
    if socket_file.is_symlink():  # a long path: the socket itself is in a private folder
        socket_file = Path(os.readlink(socket_file))
    targets = [run_dir, socket_file, run_dir / "metrics.jsonl", run_dir / "model.ckpt"]
    assert _as_other_user(shared_folder)[str(shared_folder)] == "allowed"  # the probe works
    results = _as_other_user(*targets)
    assert results == {str(path): "PermissionError" for path in targets}
    assert client.wait_for("step")  # and the engine never noticed

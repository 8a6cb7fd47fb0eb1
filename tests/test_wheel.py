"""The wheel holds every file of both packages, and the commands work from it alone.

`pip install .` (not editable) installs this wheel; a sub-package left out of it would
pass every other test, which import the source tree.
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.tiny import tiny_overrides

ROOT = Path(__file__).resolve().parent.parent
WHERE_THEN_MAIN = (
    "import sys, minigpt.service.engine as engine, minigpt.cli.main as cli; "
    "print(engine.__file__, flush=True); sys.exit(cli.main(sys.argv[1:]))"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel, with the build tools already installed."""
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    subprocess.run([*build, "--no-build-isolation", "-w", str(out), str(ROOT)], check=True)
    return next(out.glob("minigpt_tui-*.whl"))


@pytest.fixture(scope="module")
def unpacked(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel's packages in a folder of their own, as an install puts them."""
    folder = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder)
    return folder


def test_the_wheel_holds_every_source_file(wheel: Path) -> None:
    """Every .py, .tcss and .html under minigpt/ and tui/ is in the wheel, sub-packages
    included."""
    tracked = subprocess.run(
        ["git", "ls-files", "minigpt", "tui"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    wanted = {path for path in tracked if path.endswith((".py", ".tcss", ".html"))}
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if not name.startswith("minigpt_tui-")}
    assert wanted - packed == set()
    assert {"minigpt/service/engine.py", "minigpt/rundir/layout.py", "tui/app.tcss"} <= packed


def run_from(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run python with only the wheel's copy of the project importable (and its dependencies)."""
    env = os.environ | {"PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_commands_run_from_the_wheel(unpacked: Path, tmp_path: Path) -> None:
    """minigpt --help, minigpt-tui --help and a short minigpt train work from the wheel's files."""
    assert "COMMAND" in run_from(unpacked, tmp_path, "-m", "minigpt", "--help").stdout
    tui_help = run_from(unpacked, tmp_path, "-c", "from tui.cli import main; main()", "--help")
    assert "--attach" in tui_help.stdout, tui_help.stderr
    (tmp_path / "corpus.txt").write_text("the wheel holds every file. " * 200)
    sets = [arg for value in tiny_overrides(**{"train.max_iters": 4}) for arg in ("--set", value)]
    # `minigpt train`, saying first where the engine's code came from (one torch import).
    train = run_from(
        unpacked, tmp_path, "-c", WHERE_THEN_MAIN, "train", "--data", "corpus.txt",
        "--run-dir", "run", *sets,
    )  # fmt: skip
    assert train.returncode == 0, train.stdout + train.stderr
    assert train.stdout.startswith(str(unpacked / "minigpt" / "service" / "engine.py"))
    assert (tmp_path / "run" / "model.ckpt").exists()

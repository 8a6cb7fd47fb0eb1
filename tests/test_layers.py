"""The import contracts in pyproject.toml fail on a wrong import, naming the rule it breaks.

Each case copies minigpt/ and tui/ with pyproject.toml into a temporary folder, plants one
import that crosses a layer, and runs lint-imports there as `make lint` does.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the tree in folder, with its own pyproject.toml."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packages and their contracts."""
    folder = tmp_path_factory.mktemp("tree")
    for package in ("minigpt", "tui"):
        shutil.copytree(ROOT / package, folder / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", folder)
    return folder


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    """The project as it is breaks no contract."""
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("minigpt/model.py", "import tui.app", "The lesson and the shared words import no family"),
        ("minigpt/config.py", "import minigpt.rundir.journal", "import no family"),
        ("minigpt/rundir/journal.py", "import torch", "The run directory never imports torch"),
        # Indirectly: the run directory reaching torch through the lesson's model.
        ("minigpt/rundir/history.py", "import minigpt.model", "run directory never imports torch"),
        ("tui/stats.py", "import torch", "The dashboard never imports torch"),
        ("tui/stats.py", "import minigpt.checkpoint", "The dashboard never imports torch"),
        ("minigpt/rundir/layout.py", "import minigpt.service.client", "families stack"),
        ("minigpt/export/hf.py", "import minigpt.service.engine", "families stack"),
        ("minigpt/service/run.py", "import minigpt.cli.options", "families stack"),
        ("minigpt/learned/probe.py", "import minigpt.rundir.layout", "families stack"),
        ("minigpt/cli/status.py", "import textual", "never imports the dashboard"),
    ],
)
def test_a_planted_wrong_import_fails_with_the_rules_name(
    tree: Path, module: str, planted: str, contract: str
) -> None:
    """One import across a layer makes lint-imports fail and name the broken contract."""
    path = tree / module
    original = path.read_text()
    path.write_text(original + f"\n{planted}  # planted by the test\n")
    try:
        result = lint_imports(tree)
    finally:
        path.write_text(original)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), result.stdout


def test_every_flat_module_is_under_the_lessons_contract() -> None:
    """A module added to minigpt/'s top level is checked too: the contract names every one."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    lesson = next(c for c in contracts["contracts"] if c["name"].startswith("The lesson"))
    flat = {f"minigpt.{path.stem}" for path in (ROOT / "minigpt").glob("*.py")}
    entry_points = {"minigpt.__init__", "minigpt.__main__"}
    assert set(lesson["source_modules"]) == flat - entry_points

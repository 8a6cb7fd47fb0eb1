"""The import contracts in pyproject.toml fail on a wrong import, naming the rule it breaks.

Each case copies minigpt/ and tui/ with pyproject.toml into a temporary folder, plants one
import that crosses a layer, and runs lint-imports there as `make lint` does.
"""

import os
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
        env=os.environ | {"COLUMNS": "200"},  # a contract's name on one line
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and their contracts."""
    folder = tmp_path / "tree"
    for package in ("minigpt", "tui"):
        shutil.copytree(ROOT / package, folder / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", folder)
    return folder


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    """The project as it is breaks no contract."""
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# (module, the wrong import planted in it, the contract it breaks, the chain named)
PLANTED = [
    ("minigpt/model.py", "import tui.app", "The lesson and the shared words import no family",
     "minigpt.model -> tui.app"),
    ("minigpt/config.py", "import minigpt.rundir.journal", "import no family",
     "minigpt.config -> minigpt.rundir.journal"),
    ("minigpt/rundir/journal.py", "import torch", "The run directory never imports torch",
     "minigpt.rundir.journal -> torch"),
    # Indirectly: the run directory reaching torch through the lesson's model.
    ("minigpt/rundir/history.py", "import minigpt.model", "run directory never imports torch",
     "minigpt.rundir.history -> minigpt.model"),
    ("tui/stats.py", "import torch", "The dashboard never imports torch", "tui.stats -> torch"),
    ("tui/wording.py", "import minigpt.checkpoint", "The dashboard never imports torch",
     "tui.wording -> minigpt.checkpoint"),
    ("minigpt/rundir/layout.py", "import minigpt.service.client", "families stack",
     "minigpt.rundir.layout -> minigpt.service.client"),
    ("minigpt/export/hf.py", "import minigpt.service.engine", "families stack",
     "minigpt.export.hf -> minigpt.service.engine"),
    ("minigpt/service/run.py", "import minigpt.cli.options", "families stack",
     "minigpt.service.run -> minigpt.cli.options"),
    ("minigpt/learned/probe.py", "import minigpt.rundir.layout", "families stack",
     "minigpt.learned.probe -> minigpt.rundir.layout"),
    ("minigpt/cli/status.py", "import textual", "never imports the dashboard",
     "minigpt.cli.status -> textual"),
]  # fmt: skip


def test_planted_wrong_imports_fail_with_the_rules_names(tree: Path) -> None:
    """Imports across the layers, planted together, make lint-imports fail, name each
    broken contract and show each planted import under it."""
    for module, planted, _, _ in PLANTED:
        path = tree / module
        path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    report = result.stdout
    broken = [line for line in report.splitlines() if line.endswith("BROKEN")]
    for module, _, contract, chain in PLANTED:
        assert any(contract in line for line in broken), (contract, report)
        assert chain in report, (module, report)


def test_every_flat_module_is_under_the_lessons_contract() -> None:
    """A module added to minigpt/'s top level is checked too: the contract names every one."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    lesson = next(c for c in contracts["contracts"] if c["name"].startswith("The lesson"))
    flat = {f"minigpt.{path.stem}" for path in (ROOT / "minigpt").glob("*.py")}
    entry_points = {"minigpt.__init__", "minigpt.__main__"}
    assert set(lesson["source_modules"]) == flat - entry_points

"""An engine that cannot start is named within seconds, whatever stopped it; r and q still work."""

from pathlib import Path

import pytest
from textual.widgets import Static

from tests.tui.pilot import until
from tui.app import make_app
from tui.link import EngineLink
from tui.screens import QuitScreen

NAMED_WITHIN_S = 10


def _fake_torch(tmp_path: Path, body: str) -> str:
    """A folder holding a `torch` package whose import runs body, for PYTHONPATH."""
    package = tmp_path / "fake" / "torch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(body, encoding="utf-8")
    return str(tmp_path / "fake")


def _under_a_file(tmp_path: Path) -> tuple[Path, str]:
    """A run directory whose parent is a regular file."""
    (tmp_path / "notes.txt").write_text("not a folder", encoding="utf-8")
    return tmp_path / "notes.txt" / "run", "Not a directory"


def _name_too_long(tmp_path: Path) -> tuple[Path, str]:
    """A run directory whose name the file system refuses."""
    return tmp_path / ("r" * 300), "File name too long"


@pytest.mark.parametrize("case", [_under_a_file, _name_too_long])
async def test_a_run_dir_that_cannot_be_made_is_named(config_file, tmp_path, case) -> None:
    """The panel names the path and why; r tries again, q still asks how to quit."""
    run_dir, reason = case(tmp_path)
    app = make_app(EngineLink(run_dir, ["--config", str(config_file)]))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.state == "engine lost", timeout=NAMED_WITHIN_S)
        panel = app.query_one("#error-panel", Static)
        assert panel.border_title == "The engine could not start"
        shown = str(panel.render())
        assert reason in shown and f"cannot use {run_dir}" in shown
        await pilot.press("r")
        tries = lambda: sum(line.startswith("engine lost") for line in app.log_lines)  # noqa: E731
        await until(pilot, lambda: tries() == 2, timeout=NAMED_WITHIN_S)
        assert app.state == "engine lost"
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("d")
    assert app.return_code == 0


@pytest.mark.parametrize(
    ("torch_body", "reason"),
    [
        ('raise ImportError("torch is broken here")', "ImportError: torch is broken here"),
        ("raise SystemExit(3)", "it exited with code 3"),
    ],
)
async def test_an_engine_that_dies_before_its_hello_is_named(
    config_file, tmp_path, monkeypatch, torch_body, reason
) -> None:
    """An import error in the engine, or an exit before it says hello: what, and where."""
    monkeypatch.setenv("PYTHONPATH", _fake_torch(tmp_path, torch_body))
    run_dir = tmp_path / "run"
    app = make_app(EngineLink(run_dir, ["--config", str(config_file)]))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.state == "engine lost", timeout=NAMED_WITHIN_S)
        shown = str(app.query_one("#error-panel", Static).render())
        assert reason in shown and str(run_dir / "engine.log") in shown
        assert app.check_action("restart_engine", ()) is True

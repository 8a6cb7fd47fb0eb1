"""An engine that cannot start, or stops, leaves a panel saying why and what to do."""

from pathlib import Path

import pytest
from textual.widgets import Static

from tests.tui.pilot import attached, until
from tui.app import make_app
from tui.cli import main


def _binary(tmp_path: Path) -> dict:
    """A PNG under a .txt name as the corpus."""
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    return {"data": str(tmp_path / "image.txt")}


def _one_character(tmp_path: Path) -> dict:
    """A corpus of one character."""
    (tmp_path / "one.txt").write_text("a", encoding="utf-8")
    return {"data": str(tmp_path / "one.txt")}


def _truncated_checkpoint(tmp_path: Path) -> dict:
    """A run whose model.ckpt was cut short."""
    run = tmp_path / "damaged"
    run.mkdir(mode=0o700)
    (run / "model.ckpt").write_bytes(b"PK\x03\x04" + bytes(100))
    return {"run": "damaged"}


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (_binary, "looks binary"),
        (_one_character, "needs at least context_length + 1"),
        (_truncated_checkpoint, "truncated or damaged"),
    ],
)
async def test_engine_that_cannot_start_shows_why(make_link, tmp_path, prepare, message) -> None:
    """The panel names the problem and the keys; the engine keys stay greyed out."""
    app = make_app(make_link(**prepare(tmp_path)))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.state == "engine lost")
        panel = app.query_one("#error-panel", Static)
        await until(pilot, lambda: panel.region.height >= 3)  # laid out on the next refresh
        assert panel.border_title == "The engine could not start"
        shown = str(panel.render())
        assert message in shown and "Fix that, then press r" in shown
        assert app.check_action("toggle_training", ()) is None


async def test_panel_goes_when_the_engine_is_back(make_link) -> None:
    """A killed engine: the panel says it stopped; r resumes and the panel goes."""
    link = make_link()
    async with attached(link) as (app, pilot):
        link.client.process.kill()
        await until(pilot, lambda: app.state == "engine lost")
        panel = app.query_one("#error-panel", Static)
        assert panel.border_title == "The engine stopped"
        assert "from the last checkpoint" in str(panel.render())
        await pilot.press("r")
        await until(pilot, lambda: app.state == "idle")
        assert panel.region.height == 0


def test_config_from_a_newer_version_stops_before_the_dashboard(tmp_path, capsys) -> None:
    """minigpt-tui checks the config first: one line, exit code 2, no screen."""
    config = tmp_path / "newer.toml"
    config.write_text("[model]\nrope_theta = 10000\n", encoding="utf-8")
    assert main(["--config", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minigpt-tui: error:") and "newer minigpt" in err
    assert len(err.strip().splitlines()) == 1

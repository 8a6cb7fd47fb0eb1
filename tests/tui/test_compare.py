"""o: other runs' val curves on this run's loss chart."""

import json
from pathlib import Path

from minigpt.rundir.layout import RunDir
from tests.tui.pilot import attached, until
from tui.compare import CompareScreen, other_runs, val_curve


def _finished_run(folder: Path, losses: list[float]) -> Path:
    """A run directory whose metrics.jsonl holds evaluations every 10 steps."""
    RunDir(folder).create()
    events = [{"event": "step", "step": 1, "loss": 4.0, "lr": 1e-3}]
    events += [
        {"event": "eval", "step": 10 * i, "train_loss": loss, "val_loss": loss}
        for i, loss in enumerate(losses)
    ]
    events.append({"event": "eval", "step": 99, "train_loss": None, "val_loss": None})  # NaN
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return folder


def test_candidates_are_siblings_with_a_history(tmp_path: Path) -> None:
    """Other folders beside the run with a metrics.jsonl, by name; NaN evals left out."""
    a = _finished_run(tmp_path / "a", [3.0, 2.5])
    _finished_run(tmp_path / "b", [3.1])
    (tmp_path / "empty").mkdir()
    assert [p.name for p in other_runs(tmp_path / "b")] == ["a"]
    assert val_curve(a) == [(0, 3.0), (10, 2.5)]


async def test_o_overlays_the_picked_runs(scripted, tmp_path: Path) -> None:
    """The picker lists the other runs; the ticked one's val curve is drawn and named."""
    _finished_run(tmp_path / "lr-3e-3", [3.0, 2.6, 2.2])
    _finished_run(tmp_path / "lr-1e-4", [3.0, 2.9, 2.8])
    async with attached(scripted, (100, 30)) as (app, pilot):
        await pilot.press("o")
        assert isinstance(app.screen, CompareScreen)
        await pilot.press("down", "space", "enter")  # the second in the list: lr-3e-3
        chart = app.loss_chart
        await until(pilot, lambda: list(chart.overlays) == ["lr-3e-3"])
        assert chart.overlays["lr-3e-3"].ys == [3.0, 2.6, 2.2]
        await until(pilot, lambda: "lr-3e-3" in str(chart.border_subtitle))
        await pilot.press("o", "escape")
        assert list(chart.overlays) == ["lr-3e-3"]  # escape keeps what is shown


async def test_o_without_other_runs_says_so(scripted) -> None:
    """With no sibling run, the picker says there is none and enter closes it."""
    async with attached(scripted) as (app, pilot):
        await pilot.press("o")
        assert isinstance(app.screen, CompareScreen)
        assert "No other run" in str(app.screen.query_one("#compare-none").render())
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, CompareScreen))
        assert app.loss_chart.overlays == {}


async def test_a_run_to_index_first_shows_its_progress(
    scripted, tmp_path: Path, monkeypatch
) -> None:
    """A picked run without an index is indexed in the background, its progress in the
    header while the keys work, then its curve is drawn and the header shows the state."""
    monkeypatch.setattr("minigpt.rundir.history_index.PROGRESS_FROM", 0)
    monkeypatch.setattr("minigpt.rundir.history_index.ROUND_BYTES", 64)  # a round per line or so
    _finished_run(tmp_path / "old", [3.0 - i / 100 for i in range(200)])
    said: list[str] = []
    async with attached(scripted, (100, 30)) as (app, pilot):
        app.watch(app, "sub_title", lambda text: said.append(text))
        await pilot.press("o", "down", "space", "enter")
        await until(pilot, lambda: list(app.loss_chart.overlays) == ["old"])
        assert any(text.startswith("old: indexing metrics.jsonl") for text in said)
        assert len(app.loss_chart.overlays["old"]) == 200
        assert app.sub_title.startswith("idle")

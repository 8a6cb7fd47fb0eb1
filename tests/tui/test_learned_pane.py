"""The Learned pane: w shows what the model learned at an eval, left/right step through the
evals from the run's records, a new eval shows at once while following, and odd records or
a run without any draw without error."""

from pathlib import Path

from textual.widgets import ContentSwitcher, TabbedContent

from minigpt.events import HeadRoles, LearnedEvent, MapPoints
from minigpt.rundir.learned import LearnedRecords
from tests.tui.pilot import attached, text, until
from tests.tui.scripted import ScriptedLink
from tui.head_table import HeadTable
from tui.learned_pane import CACHED, NO_RECORDS, LearnedPane
from tui.probe_text import ProbeText

TEXT = ["The", "␣cat", "␣sat", "↵", "on", "␣the", "␣mat"]
VOCAB = [*TEXT, "␣dog"]


def record(step: int, losses: list[float | None], induction: float) -> LearnedEvent:
    """A record of the seven-token probe: each token guessed as '␣dog' first, at 40%."""
    guesses: list[int | None] = [None] * 5 + [7, 0, 1, 2, 3] * 6
    probs: list[float | None] = [None] * 5 + [0.4, 0.2, 0.1, 0.1, 0.1] * 6
    return LearnedEvent(
        step=step,
        probe_loss=losses,
        guess_ids=guesses,
        guess_probs=probs,
        position_loss=[3.0, 2.0, 1.5, 1.0],
        context_gain=1.25,
        heads=[[HeadRoles(0.9, induction, 0.4), HeadRoles(0.1, 0.05, 2.0)]],
        embedding_map=MapPoints(ids=[0, 1, 2, 7], x=[0.0, 1.0, -1.0, 0.5], y=[1.0, 0.0, 0.5, 0.2]),
    )


def keep_records(run_dir: Path) -> None:
    """The probe and records at steps 0, 100 and 200 in run_dir."""
    records = LearnedRecords(run_dir)
    records.write_probe({"ids": list(range(7)), "text": TEXT, "vocab": VOCAB})
    records.write(record(0, [None, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0], 0.02))
    records.write(record(100, [None, 1.0, 1.5, 0.5, 2.0, 1.0, 1.5], 0.3))
    records.write(record(200, [None, 0.5, 1.0, 0.1, 1.9, 0.2, 0.3], 0.9))


async def test_w_shows_the_last_eval_and_left_right_step_through_them(
    scripted: ScriptedLink,
) -> None:
    """w: the last eval's probe text and the guesses at the cursor; left goes back an eval."""
    keep_records(scripted.run_dir)
    async with attached(scripted) as (app, pilot):
        await pilot.press("w")
        assert app.query_one(TabbedContent).active == "learned"
        assert app.screen.maximized is not None  # 80x24: the tabs take the screen
        pane = app.query_one(LearnedPane)
        await until(
            pilot, lambda: "step 200 · eval 3/3 (following)" in text(app, "#learned-status")
        )
        assert "The cat sat" in str(app.query_one(ProbeText).render())
        assert "'␣cat': loss 0.50 · guessed ␣dog 40%" in text(app, "#learned-detail")
        await pilot.press("left")
        assert "step 100 · eval 2/3 · context gain 1.250" in text(app, "#learned-status")
        await pilot.press("right", "right", "home")
        assert pane.index == 0
        await pilot.press("end", "]", "]")
        assert "'↵': loss 0.10" in text(app, "#learned-detail")


async def test_d_shows_what_got_easier_since_the_eval_before(scripted: ScriptedLink) -> None:
    """d: the probe shaded by change, and the tokens that moved most listed."""
    keep_records(scripted.run_dir)
    async with attached(scripted) as (app, pilot):
        await pilot.press("w", "d")
        detail = text(app, "#learned-detail")
        assert "moved most: ␣mat -1.2, ␣the -0.8" in detail  # 1.5 -> 0.3, 1.0 -> 0.2
        await pilot.press("home")
        assert "the first eval has nothing to compare with" in text(app, "#learned-detail")


async def test_a_new_eval_shows_at_once_while_following(scripted: ScriptedLink) -> None:
    """A learned event from the engine is shown at once at the last eval, not before."""
    keep_records(scripted.run_dir)
    async with attached(scripted) as (app, pilot):
        await pilot.press("w")
        scripted.feed(record(300, [None, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 0.95).to_dict())
        await until(
            pilot, lambda: "step 300 · eval 4/4 (following)" in text(app, "#learned-status")
        )
        await pilot.press("left", "left")
        scripted.feed(record(400, [None] * 7, 0.96).to_dict())
        await until(pilot, lambda: "eval 2/5" in text(app, "#learned-status"))
        assert "step 100" in text(app, "#learned-status")


async def test_the_views_draw_heads_positions_and_map(scripted: ScriptedLink) -> None:
    """3: a row per head with its induction history; 2 and 4 draw their charts."""
    keep_records(scripted.run_dir)
    async with attached(scripted, size=(100, 30)) as (app, pilot):
        await pilot.press("w", "3")
        table = app.query_one(HeadTable)
        assert table.row_count == 2
        assert [str(cell) for cell in table.get_row_at(0)[:3]] == ["0.0", "0.90", "0.90"]
        assert len(str(table.get_row_at(0)[4]).strip()) == 3  # three evals of history
        await pilot.press("2")
        assert "context gain across evals" in text(app, "#learned-detail")
        await pilot.press("4")
        assert app.query_one("#learned-views", ContentSwitcher).current == "map"
        await pilot.pause(0.6)  # the charts' redraw timer
        assert app.handler_errors == 0


async def test_a_run_without_records_says_so(scripted: ScriptedLink) -> None:
    """An older run (no learned/ folder): the pane says why there is nothing to show."""
    async with attached(scripted) as (app, pilot):
        await pilot.press("w")
        assert text(app, "#learned-status") == NO_RECORDS


async def test_odd_records_draw_without_error(scripted: ScriptedLink) -> None:
    """Records with None, NaN and missing values, and no probe file, draw in every view."""
    records = LearnedRecords(scripted.run_dir)
    records.path.mkdir()
    (records.path / "step-000000050.json").write_text(
        '{"probe_loss": [NaN, "x"], "heads": [[{"induction": null}], "odd"], '
        '"embedding_map": {"ids": [1, null], "x": [NaN, 1], "y": [2]}, "context_gain": 1e999}'
    )
    async with attached(scripted) as (app, pilot):
        await pilot.press("w")
        for key in ("1", "2", "3", "4", "d", "]", "left", "right"):
            await pilot.press(key)
        await pilot.pause(0.6)
        assert "step 50" in text(app, "#learned-status")
        assert app.handler_errors == 0


async def test_following_a_long_run_keeps_few_whole_records(scripted: ScriptedLink) -> None:
    """Each broadcast eval is kept whole only among the last few; the histories keep a
    summary of each (step, context gain, heads), without the probe's numbers."""
    async with attached(scripted) as (app, pilot):
        await pilot.press("w")
        pane = app.query_one(LearnedPane)
        for step in range(0, 2000, 100):
            scripted.feed(record(step, [None, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 0.5).to_dict())
        await until(pilot, lambda: "eval 20/20" in text(app, "#learned-status"))
        assert len(pane.cached) <= CACHED
        assert len(pane.summaries) == 20
        assert all(not s.probe_loss and s.heads for s in pane.summaries.values())

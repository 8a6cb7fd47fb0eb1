"""The dashboard driven with Pilot against a real engine on a tiny config."""

import pytest
from textual.widgets import Input, Static, TabbedContent

from minigpt.client import Client
from minigpt.status import run_status
from tests.tui.pilot import pause_and_resume, text, train_until, until
from tui.app import make_app
from tui.charts import LossChart
from tui.config_pane import ConfigPane
from tui.generate import GeneratePane
from tui.screens import HelpScreen, QuitScreen

SIZES = [(80, 24), (160, 48)]


@pytest.mark.parametrize("size", SIZES)
async def test_first_frame_comes_before_the_engine(make_link, size) -> None:
    """The dashboard draws at once, says it is connecting, then shows the idle run."""
    app = make_app(make_link())
    async with app.run_test(size=size) as pilot:
        assert app.state == "connecting"
        await until(pilot, lambda: app.state == "idle")
        assert "idle" in app.sub_title and "params" in app.sub_title
        assert "step 0 / 100,000" in text(app, "#step-line")
        assert app.screen.has_class("-idle")


@pytest.mark.parametrize("size", SIZES)
async def test_space_starts_pauses_and_resumes(make_link, size) -> None:
    """space starts training, pauses it, and resumes it; steps and charts follow."""
    app = make_app(make_link())
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.state == "idle")
        await pilot.press("space")
        await until(pilot, lambda: app.state == "running" and app.stats.step >= 3)
        assert app.screen.has_class("-running")
        assert len(app.query_one(LossChart).train) >= 3
        await pause_and_resume(pilot, app)
        assert "tokens/s" in text(app, "#numbers")


@pytest.mark.parametrize("size", SIZES)
async def test_save_eval_and_view_keys(make_link, size) -> None:
    """s saves, e evaluates, c and l switch tabs, y toggles the log scale."""
    app = make_app(make_link())
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.state == "idle")
        await pilot.press("s")
        await until(pilot, lambda: app.stats.checkpoint_step == 0)
        evals = len(app.query_one(LossChart).eval_val)
        await pilot.press("e")
        await until(pilot, lambda: len(app.query_one(LossChart).eval_val) == evals + 1)
        await pilot.press("c")
        assert app.query_one(TabbedContent).active == "config"
        assert app.focused is app.query_one(ConfigPane).editor
        assert "[model]" in app.query_one(ConfigPane).editor.text
        await pilot.press("escape", "l")
        assert app.query_one(TabbedContent).active == "log"
        assert any(line.startswith("saved") for line in app.log_lines)
        await pilot.press("y")
        assert app.query_one(LossChart).log_scale
        await pilot.press("y")
        assert not app.query_one(LossChart).log_scale
        await pilot.press("z")
        assert app.screen.maximized is app.query_one(TabbedContent)
        await pilot.press("z")
        assert app.screen.maximized is None


@pytest.mark.parametrize("size", SIZES)
async def test_prompt_streams_a_completion(make_link, size) -> None:
    """g focuses the prompt, where typed keys are text, and enter streams a completion."""
    app = make_app(make_link())
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.state == "idle")
        await pilot.press("g")
        assert app.focused is app.query_one("#prompt", Input)
        await pilot.press(*"the cat sat", "enter")
        pane = app.query_one(GeneratePane)
        await until(pilot, lambda: bool(pane.finished))
        entry = pane.finished[0]
        assert entry.prompt == "the cat sat" and len(entry.text) > 0
        assert "tokens/s" in entry.note and "step 0 weights" in entry.note
        assert app.stats.checkpoint_step is None  # the "s" typed was text, not a save


@pytest.mark.parametrize("size", SIZES)
async def test_help_lists_every_key(make_link, size) -> None:
    """? opens a screen naming every binding; escape closes it."""
    app = make_app(make_link())
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.state == "idle")  # so the fixture can stop its engine
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = str(app.screen.query_one("#help-keys", Static).render())
        for binding in app.BINDINGS:
            assert binding.description in shown
        box = app.screen.query_one("#help-box").region
        assert 10 < box.height <= size[1] and box.width > 40  # drawn in full, not squashed
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@pytest.mark.parametrize("size", SIZES)
async def test_finished_run_says_so(make_link, size) -> None:
    """A run that reaches max_iters shows finished, and space is refused with a message."""
    app = make_app(make_link("train.max_iters=5"))
    async with app.run_test(size=size) as pilot:
        await train_until(pilot, app, "finished")
        assert app.stats.step == 5
        await pilot.press("space")
        await until(pilot, lambda: any("max_iters" in line for line in app.log_lines))


@pytest.mark.parametrize("size", SIZES)
async def test_engine_lost_keeps_charts_and_restarts(make_link, size) -> None:
    """A killed engine is reported, the charts stay, and r resumes from the checkpoint."""
    link = make_link()
    app = make_app(link)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.state == "idle")
        await pilot.press("space")
        await until(pilot, lambda: (app.stats.checkpoint_step or 0) >= 10)
        points = len(app.query_one(LossChart).train)
        process = link.client.process
        process.kill()
        process.wait()
        await until(pilot, lambda: app.state == "engine lost")
        assert len(app.query_one(LossChart).train) >= points  # kept, not cleared
        assert app.check_action("restart_engine", ()) is True
        assert app.check_action("save", ()) is None
        await pilot.press("r")
        await until(pilot, lambda: app.state == "idle")
        assert app.stats.step >= 10 and app.stats.step % 10 == 0  # checkpoint_interval
        assert app.stats.step == app.stats.checkpoint_step


async def test_quit_detach_leaves_the_engine_training(make_link) -> None:
    """q then d closes the dashboard; the engine keeps training and can be attached."""
    link = make_link()
    app = make_app(link)
    async with app.run_test(size=(80, 24)) as pilot:
        await train_until(pilot, app, "running")
        process = link.client.process
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("d")
    assert process.poll() is None
    again = Client.connect(link.run_dir)
    assert again.hello["state"] == "running"
    again.close()
    process.kill()
    process.wait()


async def test_quit_stop_saves_and_stops_the_engine(make_link) -> None:
    """q then s shuts the engine down with a checkpoint at its last step."""
    link = make_link()
    app = make_app(link)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.state == "idle")
        await pilot.press("space")
        await until(pilot, lambda: app.stats.step >= 12)
        process = link.client.process
        await pilot.press("q", "s")
    assert process.wait(30) == 0
    assert (link.run_dir / "model.ckpt").exists()
    assert "not running" in run_status(link.run_dir)

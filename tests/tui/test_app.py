"""The dashboard's keys and views, driven with Pilot through a scripted link (no engine)."""

import pytest
from textual.binding import Binding
from textual.widgets import Input, Static, TabbedContent

from minigpt.events import AlertEvent, ConfigAppliedEvent, EvalEvent, StepEvent
from tests.tiny import tiny_config
from tests.tui.pilot import attached, border_title, text, until
from tests.tui.scripted import evaluation, hello, step
from tui.app import make_app
from tui.charts import HealthChart, LossChart
from tui.config_pane import ConfigPane
from tui.generate_pane import GeneratePane
from tui.screens import HelpScreen, QuitScreen

SIZES = [(80, 24), (160, 48)]


@pytest.mark.parametrize("size", SIZES)
async def test_first_frame_comes_before_the_engine(scripted, size) -> None:
    """The dashboard draws at once, says it is connecting, then shows the idle run."""
    app = make_app(scripted)
    async with app.run_test(size=size) as pilot:
        assert app.state == "connecting"
        scripted.feed(hello())
        await until(pilot, lambda: app.state == "idle")
        assert "idle" in app.sub_title and "0.01M params" in app.sub_title
        assert "step 0 / 100" in text(app, "#step-line")
        assert app.top.stats_panel.has_class("-idle")


@pytest.mark.parametrize("size", SIZES)
async def test_space_starts_pauses_and_resumes(scripted, size) -> None:
    """space sends start, pause and resume by state; steps fill the numbers and the chart."""
    async with attached(scripted, size) as (app, pilot):
        await pilot.press("space")
        await until(pilot, lambda: app.state == "running")
        scripted.feed(*(step(n) for n in range(1, 6)))
        await until(pilot, lambda: app.top.stats.step == 5)
        assert app.top.stats_panel.has_class("-running")
        assert len(app.query_one(LossChart).train) == 5
        await pilot.press("space")
        await until(pilot, lambda: app.state == "paused")
        await pilot.press("space")
        await until(pilot, lambda: app.state == "running")
        assert [c["cmd"] for c in scripted.sent] == ["start", "pause", "resume"]
        await until(pilot, lambda: "tokens/s  5,000" in text(app, "#numbers"))


@pytest.mark.parametrize("size", SIZES)
async def test_save_eval_and_view_keys(scripted, size) -> None:
    """s saves, e evaluates, c and l switch tabs, y toggles the log scale, z the tabs' size."""
    async with attached(scripted, size) as (app, pilot):
        await pilot.press("s")
        await until(pilot, lambda: app.top.stats.checkpoint_step == 0)
        await pilot.press("e")
        await until(pilot, lambda: len(app.query_one(LossChart).eval_val) == 1)
        await pilot.press("c")
        assert app.query_one(TabbedContent).active == "config"
        assert app.focused is app.query_one(ConfigPane).editor
        assert "[model]" in app.query_one(ConfigPane).editor.text
        await pilot.press("escape", "l")
        assert app.query_one(TabbedContent).active == "log"
        assert any(line.startswith("saved") for line in app.log_lines)
        assert any("val loss 2.4000" in line for line in app.log_lines)
        await pilot.press("y")
        assert app.query_one(LossChart).log_scale
        await pilot.press("y")
        assert not app.query_one(LossChart).log_scale
        await pilot.press("z")
        assert app.screen.maximized is app.query_one(TabbedContent)
        await pilot.press("z")
        assert app.screen.maximized is None


@pytest.mark.parametrize("size", SIZES)
async def test_help_lists_every_key(scripted, size) -> None:
    """? opens a screen naming every binding; escape closes it."""
    app = make_app(scripted)
    async with app.run_test(size=size) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = str(app.screen.query_one("#help-keys", Static).render())
        for binding in app.BINDINGS:
            assert isinstance(binding, Binding) and binding.description in shown
        box = app.screen.query_one("#help-box").region
        assert 10 < box.height <= size[1] and box.width > 40  # drawn in full, not squashed
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_finished_run_says_so(scripted) -> None:
    """A run at max_iters shows finished, and space is refused with the engine's message."""
    scripted.respond.step = 100
    async with attached(scripted, hello=hello(state="finished", step=100)) as (app, pilot):
        assert app.state == "finished"
        assert "step 100 / 100" in text(app, "#step-line")
        await pilot.press("space")
        await until(pilot, lambda: any("max_iters" in line for line in app.log_lines))


async def test_another_clients_change_shows_in_the_numbers_at_once(scripted) -> None:
    """Another client raising max_iters past a finished run's step (and lowering grad_clip)
    updates the step line, the ETA and the clip line as the change is applied."""
    config = tiny_config(**{"train.max_iters": 2000})
    async with attached(scripted, hello=hello("finished", 2067, config)) as (app, pilot):
        scripted.feed(step(2067))
        await until(pilot, lambda: "ETA 0s" in text(app, "#numbers"))
        assert "step 2,067 / 2,000" in text(app, "#step-line")
        assert not app.top.stats_dirty  # the stats timer has nothing left to show
        changes: dict[str, list[float]] = {
            "train.max_iters": [2000, 3000],
            "train.grad_clip": [1.0, 0.5],
        }
        scripted.feed(ConfigAppliedEvent(2067, changes).to_dict())
        await until(pilot, lambda: app.running is not None and app.running.train.max_iters > 2000)
        assert "step 2,067 / 3,000" in text(app, "#step-line")
        assert "ETA 11s" in text(app, "#numbers")  # 933 steps of 12.5 ms
        assert app.query_one(HealthChart).clip == 0.5


async def test_engine_lost_keeps_charts_and_r_reconnects(scripted) -> None:
    """A lost engine is reported, the charts stay, and r connects again from a new hello."""
    async with attached(scripted, hello=hello(state="running")) as (app, pilot):
        scripted.feed(*(step(n) for n in range(1, 11)))
        await until(pilot, lambda: app.top.stats.step == 10)
        scripted.lose("the engine closed the connection")
        await until(pilot, lambda: app.state == "engine lost")
        assert len(app.query_one(LossChart).train) == 10  # kept, not cleared
        panel = app.query_one("#error-panel", Static)
        assert panel.border_title == "The engine stopped"
        await until(pilot, lambda: panel.region.height >= 3)  # shown at the next layout
        assert app.check_action("restart_engine", ()) is True
        assert app.check_action("send", ()) is None
        await pilot.press("r")
        scripted.feed(hello(state="idle", step=10, steps=[[n, 2.0, 1e-3] for n in range(11)]))
        await until(pilot, lambda: app.state == "idle")
        assert scripted.opened == 2 and app.top.stats.step == 10
        await until(pilot, lambda: panel.region.height == 0)


async def test_quit_detach_sends_nothing_and_closes(scripted) -> None:
    """q then d closes the dashboard and leaves the engine alone (no shutdown sent)."""
    async with attached(scripted, hello=hello(state="running")) as (app, pilot):
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("d")
    assert not scripted.commands("shutdown") and scripted.client is None
    assert app.return_code == 0


async def test_quit_stop_asks_the_engine_to_save_and_stop(scripted) -> None:
    """q then s sends shutdown (which saves) and closes the dashboard."""
    async with attached(scripted, hello=hello(state="running")) as (_, pilot):
        await pilot.press("q", "s")
    assert [c["cmd"] for c in scripted.sent] == ["shutdown"]


async def test_g_focuses_the_prompt_where_keys_are_text(scripted) -> None:
    """g puts the cursor in the prompt: typed s and e are text, not save and eval."""
    async with attached(scripted) as (app, pilot):
        await pilot.press("g")
        assert app.focused is app.query_one("#prompt", Input)
        await pilot.press(*"see", "enter")
        pane = app.query_one(GeneratePane)
        await until(pilot, lambda: bool(pane.finished))
        assert pane.finished[0].prompt == "see" and pane.finished[0].text == " sat on the mat"
        assert [c["cmd"] for c in scripted.sent] == ["sample"]


async def test_eval_history_and_later_evals_chart_and_log(scripted) -> None:
    """A hello's evals are charted silently; a new eval is charted and logged."""
    evals = [evaluation(10, 2.6), evaluation(20, 2.5)]
    async with attached(scripted, hello=hello(step=20, evals=evals)) as (app, pilot):
        chart = app.query_one(LossChart)
        assert chart.eval_val.on("step").xs == [10, 20] and app.top.stats.val_loss == 2.5
        assert not any("val loss" in line for line in app.log_lines)
        scripted.feed(evaluation(30, 2.25))
        await until(pilot, lambda: len(chart.eval_val) == 3)
        assert any("step 30: train loss 2.3000, val loss 2.2500" in line for line in app.log_lines)


async def test_training_health_shows_in_numbers_log_and_chart(scripted) -> None:
    """Gradient norm and clipped share, update ratio, bits per byte and epochs show in the
    numbers; an alert is logged in plain words and marked on the charts; h swaps the loss
    chart for the gradient norms and back."""
    async with attached(scripted, (160, 48), hello(state="running")) as (app, pilot):
        for n in range(1, 5):
            event = StepEvent(n, 2.5, 1e-3, 5000.0, 12.5, n / 80, grad_norm=1.5, clipped=n % 2 == 0)
            scripted.feed(event.to_dict())
        eval_event = EvalEvent(
            4, 2.3, 2.4, 2.4, val_bpb=3.46, epochs=0.25, update_ratio=[1e-3, 2e-3]
        )
        alert = AlertEvent("too_high_lr", 4, "most recent steps were clipped: lower the rate")
        scripted.feed(eval_event.to_dict(), alert.to_dict())
        await until(
            pilot, lambda: bool(app.loss_chart.alerts) and "val bpb   3" in text(app, "#numbers")
        )
        numbers = text(app, "#numbers")
        assert "grad norm 1.5 · 50% clip" in numbers and "update    2.0e-03" in numbers
        assert "val bpb   3.460 · 0.25 ep" in numbers
        assert app.loss_chart.alerts == [4]
        assert any("alert at step 4: most recent steps were clipped" in x for x in app.log_lines)
        assert any(
            "3.460 bits/byte" in x and "update ratio by block 1.0e-03 2.0e-03" in x
            for x in app.log_lines
        )
        health = app.query_one(HealthChart)
        await pilot.press("h")  # the gradient norms take the loss chart's place
        await pilot.pause()
        assert health.region.height and not app.query_one(LossChart).region.height
        assert health.norms.ys == [1.5] * 4 and health.clip == 1.0 and health.alerts == [4]
        health.redraw_if_dirty()
        health.render()
        assert "gradient norm" in border_title(health) and app.handler_errors == 0
        await pilot.press("h")
        await pilot.pause()
        assert app.query_one(LossChart).region.height

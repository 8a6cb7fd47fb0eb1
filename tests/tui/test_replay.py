"""Real engine sessions, recorded once (tests/tui/record.py), replayed through the dashboard."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from textual.pilot import Pilot

from tests.tui.pilot import attached, running_config, text, until
from tests.tui.scripted import ScriptedLink, Wire, recording
from tui.app import MiniGPTApp
from tui.generate_pane import GeneratePane

# Fed after a recording: the dashboard applies events in order, so once this line is in its
# Log, every event before it has been applied (an empty queue alone may hide one in flight).
END = {"event": "log", "level": "info", "message": "the end of the replayed recording"}


@asynccontextmanager
async def replay(
    scripted: ScriptedLink, name: str, size: tuple[int, int] = (80, 24)
) -> AsyncIterator[tuple[MiniGPTApp, Pilot, list[Wire]]]:
    """The dashboard fed a recording (its first event the hello), once all of it is applied."""
    first, *rest = events = recording(name)
    scripted.respond = None
    async with attached(scripted, size, first) as (app, pilot):
        scripted.feed(*rest, END)
        await until(pilot, lambda: f"log: {END['message']}" in app.log_lines)
        yield app, pilot, events


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_a_recorded_run_draws_to_its_end(scripted, size) -> None:
    """Steps, evals, the save and the completion of a real run all show, at both sizes."""
    async with replay(scripted, "run", size) as (app, pilot, events):
        evals = [e for e in events if e["event"] == "eval"]
        assert app.state == "finished" and app.top.stats.step == 60
        assert app.loss_chart.eval_val.on("step").xs == [e["step"] for e in evals]
        assert app.top.stats.checkpoint_step == 60
        assert len(app.query_one(GeneratePane).finished) == 1
        await pilot.pause(0.6)  # a chart redraw
        assert "step 60 / 60" in text(app, "#step-line")
        assert app.handler_errors == 0


async def test_a_recorded_divergence_keeps_the_dashboard_alive(scripted) -> None:
    """Evals on NaN steps, the hint, the pause and the engine's new hello: no error, the
    run shown as the engine went back to it."""
    async with replay(scripted, "divergence") as (app, _, events):
        assert any(e["event"] == "eval" and e["val_loss"] is None for e in events)
        assert app.handler_errors == 0 and app.state == "paused"
        assert any("lower train.learning_rate" in line for line in app.log_lines)
        assert any("val loss -" in line for line in app.log_lines)  # a NaN eval, shown as -
        last_hello = [e for e in events if e["event"] == "hello"][-1]
        assert app.top.stats.step == last_hello["step"]


async def test_a_recorded_restart_redraws_from_the_new_hello(scripted) -> None:
    """A change of shape starts the run over: the second hello resets charts and numbers."""
    async with replay(scripted, "restart") as (app, _, events):
        hellos = [e for e in events if e["event"] == "hello"]
        assert len(hellos) == 2 and hellos[-1]["step"] == 0
        assert app.handler_errors == 0 and app.state == "idle" and app.top.stats.step == 0
        assert len(app.loss_chart.train) == 0
        assert running_config(app).model.d_model == 16


async def test_a_recorded_torchrun_job_shows_both_ranks_batches(scripted) -> None:
    """Rank 0 of a two-process job reads like any run, counting both ranks' tokens."""
    async with replay(scripted, "torchrun") as (app, _, _):
        assert app.handler_errors == 0 and app.state == "finished" and app.top.stats.step == 40
        facts = app.model_facts
        assert facts is not None and facts.tokens_per_step == 2 * 4 * 16  # two ranks' batches
        assert app.loss_chart.eval_val.on("step").xs == [0, 20, 40]

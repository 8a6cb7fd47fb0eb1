"""A hello built from a run whose history files hold odd lines draws without an error."""

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigpt.service.engine import Engine
from minigpt.service.run import Run
from tests.minigpt.rundir.test_odd_history import ODD_LINE, append_lines, save_a_run
from tests.tui.pilot import attached
from tests.tui.scripted import ScriptedLink

pytestmark = pytest.mark.trains


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run saved at step 20, copied by each example."""
    return save_a_run(tmp_path_factory.mktemp("odd"))


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(metrics=st.lists(ODD_LINE, min_size=1, max_size=10), samples=st.lists(ODD_LINE, max_size=5))
async def test_a_hello_from_odd_files_draws(saved, tmp_path_factory, metrics, samples) -> None:
    """The dashboard shows the run from such a hello, and says what was skipped."""
    run_dir = tmp_path_factory.mktemp("copy") / "run"
    shutil.copytree(saved, run_dir)
    append_lines(run_dir, metrics, samples)
    run = Run.resume(None, run_dir)
    try:
        hello = Engine(run).hello()
    finally:
        run.close()
    scripted = ScriptedLink(run_dir)  # a fresh link for each example
    async with attached(scripted, hello=hello.to_dict()) as (app, _):
        for chart in (app.loss_chart, app.lr_chart):  # drawn now, not on the next tick
            chart.redraw_if_dirty()
            chart.render()
        assert app.handler_errors == 0 and app.top.stats.step == 20
        assert len(app.loss_chart.eval_val) == 3
        notes = [line for line in app.log_lines if line.startswith("history:")]
        assert len(notes) == len(hello.history.skipped)

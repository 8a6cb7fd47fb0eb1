"""o: other runs' val curves on this run's loss chart, named by the settings that differ, with
a table of them under the chart; t: the x axis by step, tokens seen or training time."""

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from minigpt.config import Config
from minigpt.events import ConfigAppliedEvent, EvalEvent
from tests.run_folders import SECONDS, TOKENS, finished_run
from tests.tiny import tiny_config
from tests.tui.pilot import attached, until
from tests.tui.scripted import hello
from tui.app import MiniGPTApp
from tui.compare import Compared, CompareScreen, other_runs
from tui.compare_table import legend, table
from tui.help_keys import help_keys


def like_hello(**values: object) -> Config:
    """The scripted engine's config (tests/tui/scripted.py's hello), with values on top."""
    return tiny_config(**({"train.max_iters": 100} | values))


def shown(grid: Table) -> list[list[str]]:
    """A table's lines as a terminal shows them, split into words."""
    console = Console(width=80, color_system=None)
    with console.capture() as capture:
        console.print(grid)
    return [line.split() for line in capture.get().splitlines()]


def on_screen(app: MiniGPTApp, selector: str) -> bool:
    """Whether the widget shows at least one row inside the terminal."""
    region = app.query_one(selector).region
    return region.height > 0 and region.y >= 0 and region.bottom <= app.size.height


def test_candidates_are_siblings_with_a_history(tmp_path: Path) -> None:
    """Other folders beside the run with a metrics.jsonl, by name; a run is read with its
    config, or without one and why."""
    a = finished_run(tmp_path / "a", [3.0, 2.5], like_hello())
    finished_run(tmp_path / "b", [3.1])
    (tmp_path / "empty").mkdir()
    assert [p.name for p in other_runs(tmp_path / "b")] == ["a"]
    run = Compared.read(a)
    assert [(e.step, e.val_loss) for e in run.evals] == [(0, 3.0), (10, 2.5)]
    assert run.config == like_hello() and run.problem is None
    bare = Compared.read(tmp_path / "b")
    assert bare.config is None and "has no config.toml" in str(bare.problem)


def test_a_legend_names_what_differs_from_this_run() -> None:
    """Where a run differs: keys by their last part (learning_rate as lr), values as written,
    at most three then how many more, a long value by its end; else the folder's name."""
    this = like_hello()
    wide = Compared("wide", [], like_hello(**{"model.d_model": 64, "train.learning_rate": 0.02}))
    assert legend(this, wide) == "d_model=64, lr=0.02"
    relu2 = like_hello(**{"model.activation": "relu2", "train.learning_rate": 0.02})
    assert legend(this, Compared("relu2", [], relu2)) == "activation=relu2, lr=0.02"
    many = {
        "model.num_blocks": 2, "train.seed": 7, "train.min_lr": 1e-5, "train.max_iters": 50,
        "data.path": "/home/someone/corpora/shakespeare.txt",
    }  # fmt: skip
    assert legend(this, Compared("many", [], like_hello(**many))) == (
        "num_blocks=2, max_iters=50, min_lr=1e-05 +2"
    )
    corpus = Compared("corpus", [], like_hello(**{"data.path": many["data.path"]}))
    assert legend(this, corpus) == "path=…shakespeare.txt"
    assert legend(this, Compared("same", [], like_hello(**{"train.threads": 3}))) == "same"
    assert legend(this, Compared("broken", [], None)) == "broken"
    assert legend(None, wide) == "wide"


def test_the_table_lists_only_the_keys_that_differ() -> None:
    """This run first, then each compared one: a column per key differing anywhere, "?" for
    a run whose config cannot be read; none differing, the runs alone."""
    runs = [
        Compared("fast", [], like_hello(**{"train.learning_rate": 0.02})),
        Compared("wide", [], like_hello(**{"model.d_model": 64})),
        Compared("broken", [], None),
    ]
    assert shown(table("run", like_hello(), runs)) == [
        ["run", "d_model", "lr"],
        ["run", "32", "0.001"],
        ["fast", "32", "0.02"],
        ["wide", "64", "0.001"],
        ["broken", "?", "?"],
    ]
    assert shown(table("run", like_hello(), runs[2:]))[0] == [
        "run",
        "·",
        "no",
        "setting",
        "differs",
    ]


async def test_o_names_the_picked_runs_by_what_differs(scripted, tmp_path: Path) -> None:
    """The ticked runs' val curves are drawn and named in the legend by the settings where
    they differ from this run, the table of those under the chart, all on screen at 80x24;
    a change to this run's config renames them."""
    finished_run(tmp_path / "fast", [3.0, 2.6, 2.2], like_hello(**{"train.learning_rate": 3e-3}))
    finished_run(tmp_path / "twin", [3.0, 2.9, 2.8], like_hello())
    async with attached(scripted) as (app, pilot):
        await pilot.press("o")
        assert isinstance(app.screen, CompareScreen)
        await pilot.press("space", "down", "space", "enter")
        chart = app.loss_chart
        await until(pilot, lambda: list(chart.overlays) == ["fast", "twin"])
        assert chart.overlays["fast"].on("step").ys == [3.0, 2.6, 2.2]
        assert chart.labels == {"fast": "lr=0.003", "twin": "twin"}
        chart.redraw_if_dirty()
        legend_line = Text.from_markup(str(chart.border_subtitle)).plain
        assert legend_line.startswith("lr=0.003 · twin · ln(vocab)")
        grid = app.top.compare_table.content
        assert isinstance(grid, Table) and [str(c.header) for c in grid.columns] == ["run", "lr"]
        await pilot.pause()
        assert on_screen(app, "#loss") and on_screen(app, "#compare-table")
        scripted.feed(ConfigAppliedEvent(20, {"train.learning_rate": [1e-3, 3e-3]}).to_dict())
        await until(pilot, lambda: chart.labels == {"fast": "fast", "twin": "lr=0.001"})
        await pilot.press("o", "escape")
        assert list(chart.overlays) == ["fast", "twin"]  # escape keeps what is shown


async def test_t_plots_by_step_tokens_seen_and_training_time(scripted, tmp_path: Path) -> None:
    """t goes from steps to tokens seen to training time and back; each curve is placed by
    what its evals recorded (the training time of an eval line without one is its step's),
    an eval without that figure left off that axis, and the chart draws on each."""
    finished_run(tmp_path / "other", [3.0, 2.6, 2.2], like_hello())
    evals = [
        EvalEvent(0, 3.1, 3.1, 3.1, tokens_seen=0, elapsed=0.0).to_dict(),
        EvalEvent(10, 2.8, 2.8, 2.8, tokens_seen=640, elapsed=None).to_dict(),
        EvalEvent(20, 2.5, 2.5, 2.5, tokens_seen=None, elapsed=4.0).to_dict(),
    ]
    async with attached(scripted, (160, 48), hello(step=20, evals=evals)) as (app, pilot):
        await pilot.press("o", "space", "enter")
        chart = app.loss_chart
        await until(pilot, lambda: list(chart.overlays) == ["other"])
        assert chart.x_axis == "step"
        placed = {}
        for axis, last_tick in (("tokens", "1.28k"), ("time", "4s")):
            await pilot.press("t")
            assert chart.x_axis == axis
            chart.redraw_if_dirty()
            placed[axis] = (chart.eval_val.on(axis).xs, chart.overlays["other"].on(axis).xs)
            assert "by " in str(chart.border_title) and "cyan" not in str(chart.border_title)
            assert last_tick in str(chart.render())
        assert placed["tokens"] == ([0, 640], [0, 10 * TOKENS, 20 * TOKENS])
        assert placed["time"] == ([0.0, 4.0], [0.0, SECONDS, 2 * SECONDS])
        await pilot.press("t")
        assert chart.x_axis == "step" and app.handler_errors == 0
    assert ("t", "X: step/tokens/time") in help_keys(MiniGPTApp.BINDINGS)


async def test_o_without_other_runs_says_so(scripted) -> None:
    """With no sibling run, the picker says there is none and enter closes it."""
    async with attached(scripted) as (app, pilot):
        await pilot.press("o")
        assert isinstance(app.screen, CompareScreen)
        assert "No other run" in str(app.screen.query_one("#compare-none").render())
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, CompareScreen))
        assert app.loss_chart.overlays == {}
        assert not app.query_one("#compare-table").display


async def test_a_run_to_index_first_shows_its_progress(
    scripted, tmp_path: Path, monkeypatch
) -> None:
    """A picked run without an index is indexed in the background, its progress in the
    header while the keys work, then its curve is drawn and the header shows the state;
    the Log says why its settings cannot be named."""
    monkeypatch.setattr("minigpt.rundir.history_index.PROGRESS_FROM", 0)
    monkeypatch.setattr("minigpt.rundir.history_index.ROUND_BYTES", 64)  # a round per line or so
    finished_run(tmp_path / "old", [3.0 - i / 100 for i in range(200)])
    said: list[str] = []
    async with attached(scripted, (100, 30)) as (app, pilot):
        app.watch(app, "sub_title", lambda text: said.append(text))
        await pilot.press("o", "down", "space", "enter")
        await until(pilot, lambda: list(app.loss_chart.overlays) == ["old"])
        assert any(text.startswith("old: indexing metrics.jsonl") for text in said)
        assert len(app.loss_chart.overlays["old"]) == 200
        assert app.sub_title.startswith("idle")
        assert app.loss_chart.labels == {"old": "old"}
        assert any("old: its settings cannot be named" in line for line in app.log_lines)

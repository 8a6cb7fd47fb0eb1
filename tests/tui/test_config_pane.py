"""The Config tab: edit the running config, apply it, refuse bad input, save it."""

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from minigpt.config_text import key_line, set_value
from minigpt.rundir import RunDir
from tests.tui.pilot import until
from tui.app import MiniGPTApp, make_app
from tui.config_pane import ConfigPane
from tui.link import EngineLink
from tui.screens import RestartScreen, SaveConfigScreen


def config_events(run_dir: Path) -> list[dict]:
    """Every config_applied event the engine recorded."""
    lines = RunDir(run_dir).metrics.read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "config_applied"]


def steps_after(run_dir: Path, step: int) -> list[dict]:
    """Step events the engine recorded after `step`."""
    lines = RunDir(run_dir).metrics.read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "step" and e["step"] > step]


@asynccontextmanager
async def editing(link: EngineLink, size: tuple[int, int]) -> AsyncIterator[tuple]:
    """The dashboard on link, training, with the cursor in the Config editor."""
    app = make_app(link)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.state == "idle")
        await pilot.press("space")
        await until(pilot, lambda: app.state == "running" and app.stats.step > 0)
        await pilot.press("c")
        pane = app.query_one(ConfigPane)
        assert app.focused is pane.editor
        yield app, pilot, pane


async def edit(pilot, pane: ConfigPane, key: str, value: object) -> None:
    """Change one key in the editor's text, as typing would."""
    edited = set_value(pane.editor.text, key, value)
    assert edited is not None
    pane.replace_text(edited)
    await pilot.pause()


async def ask_restart(pilot, app: MiniGPTApp, pane: ConfigPane, key: str, value: object) -> None:
    """Edit a key that needs a fresh model and press ctrl+s: the restart dialog opens."""
    await edit(pilot, pane, key, value)
    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(app.screen, RestartScreen))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_hot_change_reaches_the_engine_at_the_next_step(make_link, size) -> None:
    """ctrl+s sends a new learning rate; the next steps train with it and the chart marks it."""
    link = make_link("train.warmup_iters=0", "train.min_lr=0.001")  # lr stays at its peak
    async with editing(link, size) as (app, pilot, pane):
        assert "same as the running config" in str(pane.plan.render())
        await edit(pilot, pane, "train.learning_rate", 0.004)
        await edit(pilot, pane, "train.min_lr", 0.004)
        assert "next step: train.learning_rate, train.min_lr" in str(pane.plan.render())
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Applied at step" in str(pane.status.render()))
        (applied,) = config_events(link.run_dir)
        assert applied["changes"] == {
            "train.learning_rate": [0.001, 0.004],
            "train.min_lr": [0.001, 0.004],
        }
        await until(pilot, lambda: app.stats.lr == pytest.approx(0.004))
        assert all(
            e["lr"] == pytest.approx(0.004) for e in steps_after(link.run_dir, applied["step"])
        )
        assert applied["step"] in app.loss_chart.markers
        assert any("applied train.learning_rate 0.001 -> 0.004" in line for line in app.log_lines)
        assert pane.running.train.learning_rate == 0.004
        assert "learning_rate = 0.004" in RunDir(link.run_dir).config.read_text(encoding="utf-8")


BAD_EDITS = [  # (the key whose line is replaced, the bad line, the message shown)
    ("train.learning_rate", "learning_rate = 0.1.2", "column 20: Expected newline"),
    (
        "train.learning_rate",
        "learnin_rate = 0.1",
        "train.learnin_rate: unknown key (did you mean train.learning_rate?)",
    ),
    ("train.batch_size", 'batch_size = "big"', 'expected an integer, got "big" (str)'),
    ("train.eval_iters", "eval_iters = 0", "train.eval_iters: must be >= 1, got 0"),
    ("model.num_heads", "num_heads = 3", "model.num_heads: 3 does not divide model.d_model = 32"),
]


async def test_diverged_loss_pauses_with_a_hint_and_recovers(make_link) -> None:
    """A learning rate of 1e30 makes the loss NaN: the dashboard shows the engine's hint,
    pauses at the last checkpoint, and trains on once the rate is lowered again."""
    link = make_link("train.warmup_iters=0", "train.min_lr=0.001", "train.checkpoint_interval=5")
    async with editing(link, (100, 30)) as (app, pilot, pane):
        await until(pilot, lambda: (app.stats.checkpoint_step or 0) >= 5)
        await edit(pilot, pane, "train.learning_rate", 1e30)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.state == "paused")
        await until(
            pilot, lambda: any("lower train.learning_rate" in line for line in app.log_lines)
        )
        back_to = app.stats.step
        assert back_to == app.stats.checkpoint_step and back_to % 5 == 0
        assert "paused" in str(app.stats_panel.border_title).lower()
        await edit(pilot, pane, "train.learning_rate", 0.001)
        await pilot.press("ctrl+s")
        # Not just "Applied at step": the 1e30 change said that too.
        await until(pilot, lambda: "-> 0.001" in str(pane.status.render()))
        await pilot.press("escape", "space")
        await until(pilot, lambda: app.state == "running" and app.stats.step > back_to + 3)
        assert all(math.isfinite(e["loss"]) for e in steps_after(link.run_dir, back_to))


@pytest.mark.parametrize(("key", "bad_line", "message"), BAD_EDITS)
async def test_bad_input_is_shown_inline_and_changes_nothing(
    make_link, key, bad_line, message
) -> None:
    """Syntax, unknown key, type, range and cross-key errors: inline, the text and run unchanged."""
    link = make_link()
    async with editing(link, (120, 40)) as (app, pilot, pane):
        config_file = RunDir(link.run_dir).config.read_bytes()
        lines = pane.editor.text.split("\n")
        number = key_line(pane.editor.text, key)
        lines[number - 1] = bad_line
        bad_text = "\n".join(lines)
        pane.replace_text(bad_text)
        await pilot.press("ctrl+s")
        status = str(pane.status.render())
        assert f"config:{number}: " in status or f"config: line {number}, " in status
        assert message in status and pane.status.has_class("-error")
        assert pane.editor.text == bad_text
        assert pane.editor.cursor_location[0] == number - 1
        before = app.stats.step
        await until(pilot, lambda: app.stats.step > before)  # still training
        assert config_events(link.run_dir) == []
        assert RunDir(link.run_dir).config.read_bytes() == config_file
        assert pane.running.train.learning_rate == 0.001


async def test_restart_only_change_asks_first(make_link) -> None:
    """A new d_model opens a dialog and changes nothing until answered; cancel keeps it all."""
    link = make_link()
    async with editing(link, (80, 24)) as (app, pilot, pane):
        await ask_restart(pilot, app, pane, "model.d_model", 48)
        assert "needs a restart: model.d_model" in str(pane.plan.render())
        assert "model.d_model: 32 -> 48" in str(app.screen.query_one("#restart-changes").render())
        assert "params" in str(app.screen.query_one("#restart-plan").render())
        assert app.screen.focused.id == "cancel"
        step = app.stats.step
        await until(pilot, lambda: app.stats.step > step)  # training goes on meanwhile
        await pilot.press("escape")
        assert not isinstance(app.screen, RestartScreen)
        assert "Nothing applied" in str(pane.status.render())
        assert "d_model = 48" in pane.editor.text
        assert config_events(link.run_dir) == [] and app.model_facts["params"] > 0
        assert pane.running.model.d_model == 32


async def test_restart_from_scratch_builds_the_new_model(make_link) -> None:
    """Restart from scratch: step 0, the new shape, the user's text kept as the running one."""
    link = make_link()
    async with editing(link, (160, 48)) as (app, pilot, pane):
        params = app.model_facts["params"]
        pane.replace_text(pane.editor.text + "# my note\n")
        await ask_restart(pilot, app, pane, "model.d_model", 48)
        text = pane.editor.text
        await pilot.click("#restart")
        await until(pilot, lambda: app.state == "idle" and app.stats.step == 0)
        await until(pilot, lambda: pane.running.model.d_model == 48)
        assert pane.editor.text == text and pane.running_text == text
        assert app.model_facts["params"] > params
        assert "d_model = 48" in RunDir(link.run_dir).config.read_text(encoding="utf-8")


async def test_revert_puts_back_restart_keys_and_applies_the_rest(make_link) -> None:
    """Revert: d_model goes back to the running value (comments kept); the lr change applies."""
    link = make_link()
    async with editing(link, (160, 48)) as (app, pilot, pane):
        await edit(pilot, pane, "train.learning_rate", 0.002)
        await ask_restart(pilot, app, pane, "model.d_model", 48)
        await pilot.press("v")
        await until(pilot, lambda: "Applied at step" in str(pane.status.render()))
        assert "d_model = 32" in pane.editor.text and "# width of each token" in pane.editor.text
        (applied,) = config_events(link.run_dir)
        assert applied["changes"] == {"train.learning_rate": [0.001, 0.002]}


async def test_new_run_keeps_the_old_one(make_link) -> None:
    """New run: the old run is saved and its engine stops; the dashboard trains run-2."""
    link = make_link()
    old_dir = link.run_dir
    async with editing(link, (160, 48)) as (app, pilot, pane):
        old_engine = link.client.process
        await ask_restart(pilot, app, pane, "model.num_blocks", 2)
        await pilot.press("n")
        assert old_engine.wait(30) == 0
        await until(pilot, lambda: app.state == "idle" and link.run_dir != old_dir)
        assert link.run_dir == old_dir.with_name("run-2")
        assert pane.running.model.num_blocks == 2 and app.stats.step == 0
        assert RunDir(old_dir).model_ckpt.exists()
        assert "num_blocks = 2" in RunDir(link.run_dir).config.read_text(encoding="utf-8")


async def test_revert_key_and_save_keeps_comments(make_link, tmp_path) -> None:
    """ctrl+r restores the running text; ctrl+o writes the editor's own text, comments and all."""
    async with editing(make_link(), (80, 24)) as (app, pilot, pane):
        running_text = pane.editor.text
        await edit(pilot, pane, "train.max_iters", 50)
        await pilot.press("ctrl+r")
        assert pane.editor.text == running_text
        mine = "# my own notes\n[train]\nmax_iters = 50  # short run\n"
        pane.replace_text(mine)
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, SaveConfigScreen))
        target = tmp_path / "saved.toml"
        app.screen.query_one("#save-path").value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: target.exists())
        assert target.read_text(encoding="utf-8") == mine
        assert f"Saved to {target}" in str(pane.status.render())


async def test_save_refuses_invalid_text_and_unwritable_paths(make_link, tmp_path) -> None:
    """Invalid text never reaches the dialog; a failed write says why and leaves no file."""
    async with editing(make_link(), (80, 24)) as (app, pilot, pane):
        pane.replace_text("[train]\nmax_iters = -1\n")
        await pilot.press("ctrl+o")
        assert not isinstance(app.screen, SaveConfigScreen)
        assert "train.max_iters: must be >= 0" in str(pane.status.render())
        pane.replace_text("[train]\nmax_iters = 10\n")
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, SaveConfigScreen))
        missing = tmp_path / "no-such-folder" / "x.toml"
        app.screen.query_one("#save-path").value = str(missing)
        await pilot.press("enter")
        await until(pilot, lambda: "Not saved" in str(pane.status.render()))
        assert "No such file or directory" in str(pane.status.render())
        assert not missing.parent.exists()


async def test_plain_text_editor_when_the_highlighter_is_missing(make_link, monkeypatch) -> None:
    """Without a TOML grammar the editor is plain text, says so, and still applies changes."""
    import textual.widgets._text_area as text_area

    monkeypatch.setattr(text_area, "get_language", lambda name: None)
    link = make_link()
    async with editing(link, (80, 24)) as (_, pilot, pane):
        assert not pane.highlighted and pane.editor.language is None
        assert "highlighting is not installed" in str(pane.status.render())
        await edit(pilot, pane, "train.eval_interval", 7)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Applied at step" in str(pane.status.render()))
        assert config_events(link.run_dir)[0]["changes"] == {"train.eval_interval": [25, 7]}

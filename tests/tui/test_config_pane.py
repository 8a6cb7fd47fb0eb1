"""The Config tab: edit the running config, apply it, refuse bad input, save it."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from minigpt.config import apply_values
from minigpt.config_text import key_line, set_value
from minigpt.events import CheckpointEvent, ConfigAppliedEvent, ErrorEvent, StateEvent
from minigpt.rundir.layout import RunDir
from tests.tiny import ENGINE, tiny_config
from tests.tui.pilot import attached, shown_step, until
from tests.tui.scripted import FakeEngine, ScriptedLink, evaluation, hello, step
from tui.app import MiniGPTApp
from tui.config_pane import ConfigPane
from tui.link import EngineLink
from tui.screens import RestartScreen, SaveConfigScreen

# The scripted engine runs what tests/conftest.py's config_file says, lr held at its peak.
TINY = tiny_config(**ENGINE | {"train.warmup_iters": 0, "train.min_lr": 0.001})
AT = 10  # the step the scripted run is at when the editing starts


@pytest.fixture
def link(tmp_path: Path) -> ScriptedLink:
    """A scripted engine on the tiny config that treats restart keys as the engine does."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    return ScriptedLink(run_dir, respond=FakeEngine(config=TINY, restarts=True))


def config_events(run_dir: Path) -> list[dict]:
    """Every config_applied event the engine recorded."""
    lines = RunDir(run_dir).metrics.read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "config_applied"]


def steps_after(run_dir: Path, step: int) -> list[dict]:
    """Step events the engine recorded after `step`."""
    lines = RunDir(run_dir).metrics.read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "step" and e["step"] > step]


@asynccontextmanager
async def editing(link: ScriptedLink, size: tuple[int, int]) -> AsyncIterator[tuple]:
    """The dashboard on the scripted link, training at step AT, the cursor in the editor."""
    async with attached(link, size, hello(config=TINY)) as (app, pilot):
        await pilot.press("space")
        await until(pilot, lambda: app.state == "running")
        link.feed(*(step(n) for n in range(1, AT + 1)))
        await until(pilot, lambda: app.top.stats.step == AT)
        assert isinstance(link.respond, FakeEngine)
        link.respond.step = AT
        await pilot.press("c")
        pane = app.query_one(ConfigPane)
        assert app.focused is pane.editor
        yield app, pilot, pane


@asynccontextmanager
async def editing_engine(link: EngineLink, size: tuple[int, int]) -> AsyncIterator[tuple]:
    """The dashboard on a real engine, training, with the cursor in the Config editor."""
    async with attached(link, size) as (app, pilot):
        await pilot.press("space")
        await until(pilot, lambda: app.state == "running" and shown_step(app) > 0)
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


async def apply_new_rates(pilot, pane: ConfigPane) -> None:
    """From the running config, raise learning_rate and min_lr to 0.004 (hot keys both, so
    the plan says they apply at the next step), then ctrl+s."""
    assert "same as the running config" in str(pane.plan.render())
    await edit(pilot, pane, "train.learning_rate", 0.004)
    await edit(pilot, pane, "train.min_lr", 0.004)
    assert "next step: train.learning_rate, train.min_lr" in str(pane.plan.render())
    await pilot.press("ctrl+s")


async def ask_restart(pilot, app: MiniGPTApp, pane: ConfigPane, key: str, value: object) -> None:
    """Edit a key that needs a fresh model and press ctrl+s: the restart dialog opens."""
    await edit(pilot, pane, key, value)
    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(app.screen, RestartScreen))


@pytest.mark.trains
async def test_hot_change_reaches_the_engine_at_the_next_step(make_link) -> None:
    """ctrl+s sends a new learning rate; the next steps train with it and the chart marks it."""
    link = make_link("train.warmup_iters=0", "train.min_lr=0.001")  # lr stays at its peak
    async with editing_engine(link, (80, 24)) as (app, pilot, pane):
        await apply_new_rates(pilot, pane)
        await until(pilot, lambda: "Applied at step" in str(pane.status.render()))
        (applied,) = config_events(link.run_dir)
        assert applied["changes"] == {
            "train.learning_rate": [0.001, 0.004],
            "train.min_lr": [0.001, 0.004],
        }
        await until(pilot, lambda: app.top.stats.lr == pytest.approx(0.004))
        assert all(
            e["lr"] == pytest.approx(0.004) for e in steps_after(link.run_dir, applied["step"])
        )
        assert applied["step"] in app.loss_chart.markers
        assert any("applied train.learning_rate 0.001 -> 0.004" in line for line in app.log_lines)
        assert pane.running.train.learning_rate == 0.004
        assert "learning_rate = 0.004" in RunDir(link.run_dir).config.read_text(encoding="utf-8")


async def test_hot_change_is_sent_and_the_answer_shown(link) -> None:
    """ctrl+s sends just the changed hot keys; the engine's answer marks the chart, is logged,
    becomes the running config, and the next steps show the new rate."""
    async with editing(link, (160, 48)) as (app, pilot, pane):
        await apply_new_rates(pilot, pane)
        await until(pilot, lambda: f"Applied at step {AT}" in str(pane.status.render()))
        (sent,) = link.commands("set")
        assert sent["values"] == {"train.learning_rate": 0.004, "train.min_lr": 0.004}
        assert sent["restart"] is False
        assert AT in app.loss_chart.markers
        assert any("applied train.learning_rate 0.001 -> 0.004" in line for line in app.log_lines)
        assert pane.running.train.learning_rate == 0.004
        assert pane.running_text == pane.editor.text  # the user's text is the running one now
        link.feed(step(AT + 1, lr=0.004))
        await until(pilot, lambda: app.top.stats.lr == pytest.approx(0.004))


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


async def test_diverged_loss_pauses_with_a_hint_and_recovers(link) -> None:
    """A NaN loss (and an eval on it) shows as "-" without a crash; the engine's hint, pause and
    new hello are shown; the lowered rate is sent, and space resumes."""
    async with editing(link, (100, 30)) as (app, pilot, pane):
        link.feed(CheckpointEvent("runs/scripted/model.ckpt", AT).to_dict())
        await edit(pilot, pane, "train.learning_rate", 1e30)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Applied at step" in str(pane.status.render()))
        link.feed(step(AT + 1, loss=None), evaluation(AT + 1, val_loss=None, train_loss=None))
        await until(pilot, lambda: any(f"step {AT + 1}: train" in line for line in app.log_lines))
        assert f"step {AT + 1}: train loss -, val loss -" in app.log_lines
        hint = (
            f"loss is NaN at step {AT + 1}. Training went back to model.ckpt (step {AT}); "
            "lower train.learning_rate (or raise warmup_iters), then resume"
        )
        diverged = apply_values(TINY, {"train.learning_rate": 1e30})
        link.feed(
            ErrorEvent(hint).to_dict(),
            StateEvent("paused", "loss diverged").to_dict(),
            hello(
                state="paused",
                step=AT,
                config=diverged,
                steps=[[n, 2.5, 1e-3] for n in range(1, AT + 1)],
                last_checkpoint=CheckpointEvent("runs/scripted/model.ckpt", AT),
                config_changes=[ConfigAppliedEvent(AT, {"train.learning_rate": [1e-3, 1e30]})],
            ),
        )
        await until(pilot, lambda: app.state == "paused" and app.top.stats.step == AT)
        await until(
            pilot, lambda: any("lower train.learning_rate" in line for line in app.log_lines)
        )
        assert app.top.stats.checkpoint_step == AT and AT in app.loss_chart.markers
        assert "paused" in str(app.top.stats_panel.border_title).lower()
        assert app.handler_errors == 0
        await edit(pilot, pane, "train.learning_rate", 0.001)
        await pilot.press("ctrl+s")
        # Not just "Applied at step": the 1e30 change said that too.
        await until(pilot, lambda: "-> 0.001" in str(pane.status.render()))
        assert link.commands("set")[-1]["values"] == {"train.learning_rate": 0.001}
        await pilot.press("escape", "space")
        await until(pilot, lambda: app.state == "running")
        assert link.sent[-1]["cmd"] == "resume"
        assert app.handler_errors == 0


@pytest.mark.parametrize(("key", "bad_line", "message"), BAD_EDITS)
async def test_bad_input_is_shown_inline_and_changes_nothing(link, key, bad_line, message) -> None:
    """Syntax, unknown key, type, range and cross-key errors: inline, the text and run unchanged."""
    async with editing(link, (120, 40)) as (app, pilot, pane):
        lines = pane.editor.text.split("\n")
        number = key_line(pane.editor.text, key)
        assert number is not None, f"{key} has no line in the editor's text"
        lines[number - 1] = bad_line
        bad_text = "\n".join(lines)
        pane.replace_text(bad_text)
        await pilot.press("ctrl+s")
        status = str(pane.status.render())
        assert f"config:{number}: " in status or f"config: line {number}, " in status
        assert message in status and pane.status.has_class("-error")
        assert pane.editor.text == bad_text
        assert pane.editor.cursor_location[0] == number - 1
        assert not link.commands("set") and app.state == "running"
        assert pane.running.train.learning_rate == 0.001


async def test_restart_only_change_asks_first(link) -> None:
    """A new d_model opens a dialog and sends nothing until answered; cancel keeps it all."""
    async with editing(link, (80, 24)) as (app, pilot, pane):
        await ask_restart(pilot, app, pane, "model.d_model", 48)
        assert "needs a restart: model.d_model" in str(pane.plan.render())
        assert "model.d_model: 32 -> 48" in str(app.screen.query_one("#restart-changes").render())
        assert "params" in str(app.screen.query_one("#restart-plan").render())
        assert app.screen.focused.id == "cancel"
        link.feed(step(AT + 1))
        await until(pilot, lambda: app.top.stats.step == AT + 1)  # training shows on meanwhile
        await pilot.press("escape")
        assert not isinstance(app.screen, RestartScreen)
        assert "Nothing applied" in str(pane.status.render())
        assert "d_model = 48" in pane.editor.text
        assert not link.commands("set") and app.model_facts.params == 12_345
        assert pane.running.model.d_model == 32


async def test_restart_from_scratch_builds_the_new_model(link) -> None:
    """Restart from scratch: sent with restart=true; the engine's new hello is step 0, the new
    shape, and the user's text kept as the running one."""
    async with editing(link, (160, 48)) as (app, pilot, pane):
        params = app.model_facts.params
        pane.replace_text(pane.editor.text + "# my note\n")
        await ask_restart(pilot, app, pane, "model.d_model", 48)
        text = pane.editor.text
        await pilot.click("#restart")
        await until(pilot, lambda: app.state == "idle" and app.top.stats.step == 0)
        (sent,) = link.commands("set")
        assert sent["values"] == {"model.d_model": 48} and sent["restart"] is True
        await until(pilot, lambda: pane.running.model.d_model == 48)
        assert pane.editor.text == text and pane.running_text == text
        assert app.model_facts.params > params
        assert app.handler_errors == 0


async def test_revert_puts_back_restart_keys_and_applies_the_rest(link) -> None:
    """Revert: d_model goes back to the running value (comments kept); the lr change applies."""
    async with editing(link, (160, 48)) as (app, pilot, pane):
        await edit(pilot, pane, "train.learning_rate", 0.002)
        await ask_restart(pilot, app, pane, "model.d_model", 48)
        await pilot.press("v")
        await until(pilot, lambda: "Applied at step" in str(pane.status.render()))
        assert "d_model = 32" in pane.editor.text and "# width of each token" in pane.editor.text
        (sent,) = link.commands("set")
        assert sent["values"] == {"train.learning_rate": 0.002} and sent["restart"] is False
        assert "train.learning_rate 0.001 -> 0.002" in str(pane.status.render())


async def test_new_run_keeps_the_old_one(link) -> None:
    """New run: the old engine is asked to stop; the dashboard writes and trains run-2."""
    old_dir = link.run_dir
    async with editing(link, (160, 48)) as (app, pilot, pane):
        await ask_restart(pilot, app, pane, "model.num_blocks", 2)
        await pilot.press("n")
        await until(pilot, lambda: link.opened == 2)
        assert link.sent[-1]["cmd"] == "shutdown" and app.state == "connecting"
        assert link.run_dir == old_dir.with_name("run-2")
        assert "num_blocks = 2" in RunDir(link.run_dir).config.read_text(encoding="utf-8")
        new_run = apply_values(TINY, {"model.num_blocks": 2})
        link.feed(hello(config=new_run))
        await until(pilot, lambda: app.state == "idle")
        assert pane.running.model.num_blocks == 2 and app.top.stats.step == 0
        assert str(link.run_dir) in app.title


async def test_revert_key_and_save_keeps_comments(link, tmp_path) -> None:
    """ctrl+r restores the running text; ctrl+o writes the editor's own text, comments and all."""
    async with editing(link, (80, 24)) as (app, pilot, pane):
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
        assert not link.commands("set")


async def test_save_refuses_invalid_text_and_unwritable_paths(link, tmp_path) -> None:
    """Invalid text never reaches the dialog; a failed write says why and leaves no file."""
    async with editing(link, (80, 24)) as (app, pilot, pane):
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


async def test_plain_text_editor_when_the_highlighter_is_missing(link, monkeypatch) -> None:
    """Without a TOML grammar the editor is plain text, says so, and still applies changes."""
    import textual.widgets._text_area as text_area

    monkeypatch.setattr(text_area, "get_language", lambda name: None)
    async with editing(link, (80, 24)) as (_, pilot, pane):
        assert not pane.highlighted and pane.editor.language is None
        assert "highlighting is not installed" in str(pane.status.render())
        await edit(pilot, pane, "train.eval_interval", 7)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Applied at step" in str(pane.status.render()))
        assert link.commands("set")[0]["values"] == {"train.eval_interval": 7}
        assert "train.eval_interval 25 -> 7" in str(pane.status.render())

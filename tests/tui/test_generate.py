"""The Generate pane against a real engine: streaming, cancel, history, controls, wide text."""

import json

import pytest
from rich.cells import cell_len
from textual.widgets import RichLog

from minigpt.rundir import RunDir
from tests.tui.pilot import train_until, until
from tui.app import MiniGPTApp, make_app
from tui.generate import GeneratePane
from tui.link import EngineLink


def log_lines(log: RichLog) -> list[str]:
    """The text of each line a RichLog shows."""
    return ["".join(segment.text for segment in strip) for strip in log.lines]


async def ready(app: MiniGPTApp, pilot, start: bool = False) -> GeneratePane:
    """Wait for the engine (optionally start training) and put the cursor in the prompt."""
    await until(pilot, lambda: app.state in ("idle", "finished"))
    if start:
        await pilot.press("space")
        await until(pilot, lambda: app.state == "running" and app.stats.step > 0)
    await pilot.press("g")
    return app.query_one(GeneratePane)


async def ask(pilot, pane: GeneratePane, prompt: str) -> None:
    """Type a prompt and press enter."""
    pane.prompt.value = prompt
    await pilot.press("enter")


async def test_streams_then_escape_cancels(make_link) -> None:
    """Text streams in under the step it came from; escape stops it and says so."""
    app = make_app(make_link("sample.max_new_tokens=100000"))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await ready(app, pilot, start=True)
        await ask(pilot, pane, "the cat")
        await until(pilot, lambda: len(next(iter(pane.streams.values()), "")) > 20)
        assert pane.has_class("-streaming")
        assert str(pane.streaming.render()).startswith("the cat")
        assert "weights" in pane.streaming.border_title
        await pilot.press("escape")
        await until(pilot, lambda: bool(pane.finished))
        (entry,) = pane.finished
        assert entry.prompt == "the cat" and len(entry.text) > 20
        assert "cancelled" in entry.note and "tokens/s" in entry.note
        assert not pane.has_class("-streaming")
        assert app.focused is pane.prompt  # the first escape cancelled; it did not leave
        await pilot.press("escape")
        assert app.focused is None


async def test_prompt_history_walks_and_survives_a_new_dashboard(make_link) -> None:
    """up/down walk earlier prompts and back to the draft; a new dashboard has them too."""
    link = make_link("sample.max_new_tokens=5")
    app = make_app(link)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await ready(app, pilot)
        for prompt in ("the cat", "on mat", "on mat"):
            await ask(pilot, pane, prompt)
        await until(pilot, lambda: len(pane.finished) == 3)
        await pilot.pause()
        bottom = pane.completions.scroll_y
        await pilot.press("pageup")  # the completions scroll while the prompt keeps the keys
        assert pane.completions.scroll_y < bottom and app.focused is pane.prompt
        pane.prompt.value = "draft"
        await pilot.press("up")
        assert pane.prompt.value == "on mat"  # sent twice in a row, kept once
        await pilot.press("up", "up")
        assert pane.prompt.value == "the cat"
        await pilot.press("down", "down")
        assert pane.prompt.value == "draft"
    again = make_app(EngineLink(link.run_dir, attach_only=True))
    async with again.run_test(size=(80, 24)) as pilot:
        pane = await ready(again, pilot)
        assert [entry.prompt for entry in pane.finished] == ["the cat", "on mat", "on mat"]
        await pilot.press("up")
        assert pane.prompt.value == "on mat"


@pytest.mark.parametrize(
    ("control", "value", "message"),
    [
        ("temperature", "-1", "sample.temperature: must be >= 0, got -1"),
        ("temperature", "hot", 'sample.temperature: expected a number, got "hot" (str)'),
        ("top_k", "2.5", "sample.top_k: expected an integer, got 2.5 (float)"),
        ("top_p", "0", "sample.top_p: must be > 0 and <= 1, got 0"),
        ("top_p", "1.5", "sample.top_p: must be > 0 and <= 1, got 1.5"),
        ("max_new_tokens", "0", "sample.max_new_tokens: must be >= 1, got 0"),
        ("seed", "-3", "seed: expected a whole number >= 0 (empty: random), got '-3'"),
    ],
)
async def test_each_invalid_control_is_named_and_nothing_is_sent(
    make_link, control, value, message
) -> None:
    """A bad setting gets its message, the cursor goes to it, and no sample is asked for."""
    link = make_link()
    app = make_app(link)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await ready(app, pilot)
        pane.controls[control].value = value
        await ask(pilot, pane, "the cat")
        assert message in str(pane.status.render()) and pane.status.has_class("-error")
        assert app.focused is pane.controls[control]
        assert pane.prompt.value == "the cat"  # kept for another try
        assert not pane.requested and not RunDir(link.run_dir).samples.exists()


async def test_settings_from_the_controls_reach_the_engine(make_link) -> None:
    """The controls start at [sample]; edited ones go with the request and into samples.jsonl."""
    link = make_link("sample.temperature=0.5")
    app = make_app(link)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await ready(app, pilot)
        assert pane.controls["temperature"].value == "0.5"
        assert pane.controls["seed"].value == ""
        pane.controls["max_new_tokens"].value = "7"
        pane.controls["top_k"].value = "3"
        pane.controls["seed"].value = "42"
        await ask(pilot, pane, "the cat")
        await until(pilot, lambda: bool(pane.finished))
        record = json.loads(RunDir(link.run_dir).samples.read_text(encoding="utf-8"))
        assert record["tokens"] == 7
        wanted = {"temperature": 0.5, "top_k": 3, "seed": 42, "max_new_tokens": 7}
        assert {key: record["settings"][key] for key in wanted} == wanted
        assert "top-k 3" in pane.finished[0].note and "seed 42" in pane.finished[0].note


async def test_samples_while_running_and_while_paused(make_link) -> None:
    """Running: a later step answers; paused: exactly the paused step's weights answer."""
    app = make_app(make_link("sample.max_new_tokens=10"))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await ready(app, pilot, start=True)
        await ask(pilot, pane, "the cat")
        await until(pilot, lambda: len(pane.finished) == 1)
        assert pane.finished[0].step > 0
        await pilot.press("escape", "space")
        await until(pilot, lambda: app.state == "paused")
        paused_at = app.stats.step
        await pilot.press("g")
        await ask(pilot, pane, "on mat")
        await until(pilot, lambda: len(pane.finished) == 2)
        assert pane.finished[1].step == paused_at
        assert f"step {paused_at:,} weights" in pane.finished[1].note


async def test_a_finished_run_answers_without_training(make_link) -> None:
    """minigpt-tui on a finished run's directory samples from its checkpoint."""
    link = make_link("train.max_iters=5", "sample.max_new_tokens=5")
    app = make_app(link)
    async with app.run_test(size=(80, 24)) as pilot:
        await train_until(pilot, app, "finished")
        engine = link.client.process
        await pilot.press("q", "s")
    assert engine.wait(30) == 0
    # As `minigpt-tui --run-dir D`: no --config, so the checkpoint's config (max_iters 5) holds.
    reopened = make_link(run="run", config=False)
    app = make_app(reopened)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await ready(app, pilot)
        assert app.state == "finished"
        await ask(pilot, pane, "the cat")
        await until(pilot, lambda: bool(pane.finished))
        assert pane.finished[0].step == 5


async def test_wide_characters_unseen_characters_and_long_prompts(make_link, tmp_path) -> None:
    """Chinese and emoji stream and fit the pane; unseen characters are named; crops are said."""
    corpus = tmp_path / "wide.txt"
    corpus.write_text("你好，世界！🙂 the cat 猫 sat.\n" * 200, encoding="utf-8")  # noqa: RUF001
    link = make_link("sample.max_new_tokens=30", "sample.temperature=0", data=str(corpus))
    app = make_app(link)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await ready(app, pilot)
        await ask(pilot, pane, "你好🙂")
        await until(pilot, lambda: bool(pane.finished))
        assert pane.finished[0].prompt == "你好🙂"
        width = pane.completions.scrollable_content_region.width
        lines = log_lines(pane.completions)
        assert any(line.startswith("你好🙂") for line in lines)
        assert all(cell_len(line) <= width for line in lines)
        await ask(pilot, pane, "the dog 狗")
        await until(pilot, lambda: "not in this model's vocabulary" in str(pane.status.render()))
        assert "'d', 'o', 'g', '狗'" in str(pane.status.render())
        await ask(pilot, pane, "the cat " * 10)  # 80 characters, context_length 16
        await until(pilot, lambda: len(pane.finished) == 2)
        assert "prompt cropped by 64 tokens to fit the context" in pane.finished[1].note


async def test_at_eval_samples_browse_and_copy(make_link) -> None:
    """Evals answer the [sample] prompt; ctrl+t shows only those; ctrl+y copies the last."""
    link = make_link("sample.at_eval=true", "sample.prompt=the cat", "sample.max_new_tokens=6")
    app = make_app(link)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await ready(app, pilot, start=True)
        await until(pilot, lambda: sum(entry.at_eval for entry in pane.finished) >= 2)
        await pilot.press("escape", "space")  # pause, so the list holds still
        await until(pilot, lambda: app.state == "paused")
        await pilot.press("g")
        await ask(pilot, pane, "on mat")
        await until(pilot, lambda: not pane.finished[-1].at_eval)
        await pilot.press("ctrl+t")
        shown = "\n".join(log_lines(pane.completions))
        at_eval = [entry for entry in pane.finished if entry.at_eval]
        assert shown.count("sampled at eval") == len(at_eval) and "on mat" not in shown
        assert "'the cat'" in pane.completions.border_title
        steps = [entry.step for entry in at_eval]
        assert steps == sorted(steps) and steps[0] == 0
        await pilot.press("ctrl+t")
        assert "on mat" in "\n".join(log_lines(pane.completions))
        await pilot.press("ctrl+y")
        assert app.clipboard == "on mat" + pane.finished[-1].text
        assert "Copied the last completion" in str(pane.status.render())


async def test_a_new_hello_replaces_history_and_stale_streams() -> None:
    """After a reconnect the pane shows the engine's history once and no dead stream."""
    from textual.app import App, ComposeResult

    class PaneApp(App[None]):
        def compose(self) -> ComposeResult:
            yield GeneratePane()

    record = {"prompt": "the cat", "text": " sat", "step": 3, "tokens": 1, "tokens_per_sec": 9.0}
    app = PaneApp()
    async with app.run_test(size=(80, 24)):
        pane = app.query_one(GeneratePane)
        pane.expect("ui-1", "on mat")
        pane.stream({"id": "ui-1", "text": "x", "step": 3, "tokens_per_sec": 9.0})
        assert pane.has_class("-streaming")
        for _ in range(2):  # first contact, then the engine restarted
            pane.load_history([record])
        assert pane.prompt.history == ["the cat"] and len(pane.finished) == 1
        assert not pane.streams and not pane.has_class("-streaming")

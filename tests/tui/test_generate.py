"""The Generate pane: streaming, cancel, history, controls, wide text, at-eval samples."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from rich.cells import cell_len
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import RichLog

from minigpt.config import Config
from minigpt.events import SampleDoneEvent, SampleTokenEvent, decode
from tests.tiny import tiny_config
from tests.tui.pilot import attached, border_title, shown_step, until
from tests.tui.scripted import FakeEngine, ScriptedLink, Wire, hello, step
from tui.app import MiniGPTApp
from tui.generate_pane import GeneratePane
from tui.link import Link
from tui.messages import Ask


def log_lines(log: RichLog) -> list[str]:
    """The text of each line a RichLog shows."""
    return ["".join(segment.text for segment in strip) for strip in log.lines]


def tiny(**values: object) -> Config:
    """The config of the scripted engine's hello, with these [sample] values."""
    return tiny_config(**{"train.max_iters": 100} | {f"sample.{k}": v for k, v in values.items()})


def done(request: str, prompt: str, text: str, step: int, **fields: Any) -> SampleDoneEvent:
    """A finished completion as an engine reports it; fields (at_eval, spans) pass as given."""
    settings = {"temperature": 1.0, "max_new_tokens": len(text)}
    return SampleDoneEvent(
        request, prompt, text, len(text), 900.0, step, len(prompt), 0, settings, **fields
    )


@asynccontextmanager
async def ready(
    link: Link, size: tuple[int, int] = (80, 24), hello: Wire | None = None, start: bool = False
) -> AsyncIterator[tuple[MiniGPTApp, Pilot, GeneratePane]]:
    """The dashboard attached to link (optionally training), the cursor in the prompt."""
    async with attached(link, size, hello) as (app, pilot):
        if start:
            await pilot.press("space")
            await until(pilot, lambda: app.state == "running" and shown_step(app) > 0)
        await pilot.press("g")
        yield app, pilot, app.query_one(GeneratePane)


def expect(pane: GeneratePane, request: str, prompt: str) -> None:
    """The pane's prompt went to the engine as request."""
    pane.sent(Ask(pane, "sample", prompt=prompt), request)


async def ask(pilot, pane: GeneratePane, prompt: str) -> None:
    """Type a prompt and press enter."""
    pane.prompt.value = prompt
    await pilot.press("enter")


@pytest.mark.trains
async def test_streams_then_escape_cancels(make_link) -> None:
    """Text streams in under the step it came from; escape stops it and says so."""
    link = make_link("sample.max_new_tokens=100000")
    async with ready(link, (100, 30), start=True) as (app, pilot, pane):
        await ask(pilot, pane, "the cat")
        await until(pilot, lambda: len(next((s.text for s in pane.streams.values()), "")) > 20)
        assert pane.has_class("-streaming")
        assert str(pane.streaming.render()).startswith("the cat")
        assert "weights" in border_title(pane.streaming)
        await pilot.press("escape")
        await until(pilot, lambda: bool(pane.finished))
        (entry,) = pane.finished
        assert entry.prompt == "the cat" and len(entry.text) > 20
        assert "cancelled" in entry.note and "tokens/s" in entry.note
        assert not pane.has_class("-streaming")
        assert app.focused is pane.prompt  # the first escape cancelled; it did not leave
        await pilot.press("escape")
        assert app.focused is None


async def test_prompt_history_walks_and_survives_a_new_dashboard(scripted) -> None:
    """up/down walk earlier prompts and back to the draft; a new dashboard has them too."""
    prompts = ["the cat", "on mat", "on mat", *(f"cat {n}" for n in range(5)), "the dog"]
    async with ready(scripted) as (app, pilot, pane):
        for prompt in prompts:
            await ask(pilot, pane, prompt)
        await until(pilot, lambda: len(pane.finished) == len(prompts))
        await pilot.pause()
        bottom = pane.completions.scroll_y
        await pilot.press("pageup")  # the completions scroll while the prompt keeps the keys
        assert pane.completions.scroll_y < bottom and app.focused is pane.prompt
        pane.prompt.value = "draft"
        await pilot.press("up", "up")
        assert pane.prompt.value == "cat 4"
        await pilot.press(*["up"] * 5)
        assert pane.prompt.value == "on mat"  # sent twice in a row, kept once
        await pilot.press("up")
        assert pane.prompt.value == "the cat"
        await pilot.press("up")  # the oldest stays
        assert pane.prompt.value == "the cat"
        await pilot.press(*["down"] * 8)
        assert pane.prompt.value == "draft"
    # A new dashboard learns the run's completions from the engine's hello.
    history = [done(f"s{n}", prompt, " sat", 0).to_dict() for n, prompt in enumerate(prompts)]
    again = ScriptedLink(scripted.run_dir, respond=FakeEngine())
    async with ready(again, hello=hello(samples=history)) as (app, pilot, pane):
        assert [entry.prompt for entry in pane.finished] == prompts
        assert "the dog" in "\n".join(log_lines(pane.completions))
        await pilot.press("up")
        assert pane.prompt.value == "the dog"


@pytest.mark.parametrize(
    ("control", "value", "message"),
    [
        ("temperature", "-1", "sample.temperature: must be >= 0, got -1"),
        ("temperature", "hot", 'sample.temperature: expected a number, got "hot" (str)'),
        ("top_k", "2.5", "sample.top_k: expected an integer, got 2.5 (float)"),
        ("top_p", "0", "sample.top_p: must be > 0 and <= 1, got 0"),
        ("top_p", "1.5", "sample.top_p: must be > 0 and <= 1, got 1.5"),
        ("max_new_tokens", "0", "sample.max_new_tokens: must be >= 1, got 0"),
        ("seed", "-3", "train.seed: must be >= 0"),
    ],
)
async def test_each_invalid_control_is_named_and_nothing_is_sent(
    scripted, control, value, message
) -> None:
    """A bad setting gets its message, the cursor goes to it, and no sample is asked for."""
    async with ready(scripted) as (app, pilot, pane):
        pane.controls[control].value = value
        await ask(pilot, pane, "the cat")
        assert message in str(pane.status.render()) and pane.status.has_class("-error")
        assert app.focused is pane.controls[control]
        assert pane.prompt.value == "the cat"  # kept for another try
        assert not pane.streams and not scripted.commands("sample")


async def test_settings_from_the_controls_reach_the_engine(scripted) -> None:
    """The controls start at [sample]; edited ones go with the request and into the note."""
    config = tiny(temperature=0.5, top_p=0.9)
    async with ready(scripted, hello=hello(config=config)) as (_, pilot, pane):
        assert pane.controls["temperature"].value == "0.5"
        assert pane.controls["top_p"].value == "0.9"
        assert pane.controls["seed"].value == ""
        pane.controls["max_new_tokens"].value = "7"
        pane.controls["top_k"].value = "3"
        pane.controls["seed"].value = "42"
        await ask(pilot, pane, "the cat")
        await until(pilot, lambda: bool(pane.finished))
        (sent,) = scripted.commands("sample")
        wanted = {"temperature": 0.5, "top_k": 3, "top_p": 0.9, "seed": 42, "max_new_tokens": 7}
        assert sent["prompt"] == "the cat" and {key: sent[key] for key in wanted} == wanted
        note = pane.finished[0].note
        assert "temp 0.5" in note and "top-k 3" in note and "top-p 0.9" in note
        assert "seed 42" in note


async def test_samples_while_running_and_while_paused(scripted) -> None:
    """Each completion names the step of the weights that answered it, running or paused."""
    async with attached(scripted) as (app, pilot):
        await pilot.press("space")
        await until(pilot, lambda: app.state == "running")
        scripted.feed(*(step(n) for n in range(1, 8)))
        await until(pilot, lambda: app.top.stats.step == 7)
        await pilot.press("g")
        pane = app.query_one(GeneratePane)
        scripted.respond.step = 9  # training went on while the sample was queued
        await ask(pilot, pane, "the cat")
        await until(pilot, lambda: len(pane.finished) == 1)
        assert pane.finished[0].step == 9 and "step 9 weights" in pane.finished[0].note
        await pilot.press("escape", "space")
        await until(pilot, lambda: app.state == "paused")
        await pilot.press("g")
        await ask(pilot, pane, "on mat")
        await until(pilot, lambda: len(pane.finished) == 2)
        assert pane.finished[1].step == 9 and "step 9 weights" in pane.finished[1].note
        assert [c["cmd"] for c in scripted.sent] == ["start", "sample", "pause", "sample"]


async def test_a_finished_run_answers_without_training(scripted) -> None:
    """A finished run's dashboard samples (from the last step's weights); space is refused."""
    scripted.respond.step = 100
    async with ready(scripted, hello=hello(state="finished", step=100)) as (app, pilot, pane):
        assert app.state == "finished"
        await ask(pilot, pane, "the cat")
        await until(pilot, lambda: bool(pane.finished))
        assert pane.finished[0].step == 100 and app.state == "finished"
        assert scripted.commands("sample") and not scripted.commands("start")


async def test_wide_characters_unseen_characters_and_long_prompts(tmp_path) -> None:
    """Chinese and emoji stream and fit the pane; unseen characters are named; crops are said."""
    engine = FakeEngine(
        config=tiny(),
        pieces=["，世界！🙂 猫", " 猫" * 40],  # noqa: RUF001
        vocabulary="你好，世界！🙂 the cat 猫 sat.\n",  # noqa: RUF001
    )
    link = ScriptedLink(tmp_path, respond=engine)
    async with ready(link, hello=hello(config=tiny())) as (app, pilot, pane):
        await ask(pilot, pane, "你好🙂")
        await until(pilot, lambda: bool(pane.finished))
        assert pane.finished[0].prompt == "你好🙂"
        width = pane.completions.scrollable_content_region.width
        lines = log_lines(pane.completions)
        assert any(line.startswith("你好🙂，世界") for line in lines)  # noqa: RUF001
        assert len(lines) == 3  # the long completion wrapped once, then its note
        assert all(cell_len(line) <= width for line in lines)
        await ask(pilot, pane, "the dog 狗")
        await until(pilot, lambda: "not in this model's vocabulary" in str(pane.status.render()))
        assert "'d', 'o', 'g', '狗'" in str(pane.status.render())
        assert pane.status.has_class("-error") and not pane.streams
        await ask(pilot, pane, "the cat " * 10)  # 80 characters, context_length 16
        await until(pilot, lambda: len(pane.finished) == 2)
        assert "prompt cropped by 64 tokens to fit the context" in pane.finished[1].note
        assert app.handler_errors == 0


async def test_at_eval_samples_browse_and_copy(scripted) -> None:
    """Evals answer the [sample] prompt; ctrl+t shows only those; ctrl+y copies the last."""
    paused = hello(config=tiny(at_eval=True, prompt="the cat"), state="paused")
    async with ready(scripted, (100, 30), paused) as (app, pilot, pane):
        for n in (0, 10, 20):
            scripted.feed(done(f"eval-{n}", "the cat", f" sat {n}", n, at_eval=True).to_dict())
        await until(pilot, lambda: len(pane.finished) == 3)
        scripted.respond.step = 20
        await ask(pilot, pane, "on mat")
        await until(pilot, lambda: not pane.finished[-1].at_eval)
        await pilot.press("ctrl+t")
        shown = "\n".join(log_lines(pane.completions))
        assert shown.count("sampled at eval") == 3 and "on mat" not in shown
        assert "'the cat'" in border_title(pane.completions)
        assert [entry.step for entry in pane.finished if entry.at_eval] == [0, 10, 20]
        await pilot.press("ctrl+t")
        assert "on mat" in "\n".join(log_lines(pane.completions))
        assert "'the cat'" not in border_title(pane.completions)
        await pilot.press("ctrl+y")
        assert app.clipboard == "on mat" + pane.finished[-1].text == "on mat sat on the mat"
        assert "Copied the last completion" in str(pane.status.render())


async def test_a_new_hello_replaces_history_and_stale_streams() -> None:
    """After a reconnect the pane shows the engine's history once and no dead stream."""
    from textual.app import App, ComposeResult

    class PaneApp(App[None]):
        def compose(self) -> ComposeResult:
            yield GeneratePane()

    record = {"event": "sample_done", "id": "s1", "prompt": "the cat", "text": " sat", "step": 3}
    app = PaneApp()
    async with app.run_test(size=(80, 24)):
        pane = app.query_one(GeneratePane)
        expect(pane, "scripted-1", "on mat")
        pane.answer(SampleTokenEvent("scripted-1", "x", 9.0, 3))
        assert pane.has_class("-streaming")
        for _ in range(2):  # first contact, then the engine restarted
            event = decode(record)
            assert isinstance(event, SampleDoneEvent)
            pane.load_history([event])
        assert pane.prompt.history == ["the cat"] and len(pane.finished) == 1
        assert not pane.streams and not pane.has_class("-streaming")


def colours(log: RichLog, line: int) -> dict[str, str | None]:
    """Each piece of text on a RichLog line, and the name of its colour (None: plain)."""
    return {
        segment.text: segment.style.color.name if segment.style and segment.style.color else None
        for segment in log.lines[line]
        if segment.text.strip()
    }


async def test_ctrl_o_colours_completions_by_confidence(scripted) -> None:
    """ctrl+o colours each generated piece by its probability (prompt bold and plain, a
    legend in the border); completions without spans stay plain; ctrl+o again undoes it."""
    scripted.respond.pieces = [" sat on", " the mat now"]
    async with ready(scripted, (100, 30)) as (app, pilot, pane):
        scripted.feed(done("old", "the dog", " ran off", 0).to_dict())  # an older engine's
        await ask(pilot, pane, "the cat")
        await until(pilot, lambda: len(pane.finished) == 2)
        plain = colours(pane.completions, 2)
        assert set(plain.values()) == {None} and "confidence" not in border_title(pane.completions)
        await pilot.press("ctrl+o")
        assert colours(pane.completions, 2) == {
            "the cat": None,
            " sat": "red",  # 5%: guessing
            " on": "dark_orange",
            " the": "yellow",
            " mat": "green",
            " now": None,  # 95%: sure
        }
        bold = {s.text: bool(s.style and s.style.bold) for s in pane.completions.lines[2]}
        assert bold["the cat"] and not bold[" sat"] and not bold[" now"]
        assert set(colours(pane.completions, 0).values()) == {None}  # no spans: plain
        title = border_title(pane.completions)
        assert "confidence" in title and "red]0-10%[/" in title and "ctrl+t" in title
        await pilot.press("ctrl+t", "ctrl+t")  # a redraw keeps the colours
        assert colours(pane.completions, 2)[" sat"] == "red"
        await pilot.press("ctrl+o")
        assert set(colours(pane.completions, 2).values()) == {None}
        assert "confidence" not in border_title(pane.completions)
        assert app.handler_errors == 0


async def test_hostile_spans_draw_plain_or_coloured_without_error() -> None:
    """Spans with None, NaN, junk, ragged pairs or pieces that miss the text draw anyway,
    streaming and finished: coloured where they fit the text, plain where not."""
    from textual.app import App, ComposeResult

    class PaneApp(App[None]):
        def compose(self) -> ComposeResult:
            yield GeneratePane()

    hostile: list[Any] = [  # spans of any shape, as hostile JSON may carry them
        [("a", None), ("b", float("nan")), ("c", float("inf")), ("d", "sure"), ("e", True)],
        [("a",), ("bcde", 0.5, 1)],  # ragged
        [(1, 0.5), ("bcde", 0.05)],  # a piece that is not text
        [("ab", 0.05)],  # short of the text
        [("abcdef", 0.05)],  # past it
        "abcde",
        None,
    ]
    app = PaneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(GeneratePane)
        pane.action_toggle_confidence()
        for n, spans in enumerate(hostile):
            expect(pane, f"s{n}", "p")
            pane.answer(SampleTokenEvent(f"s{n}", "abcde", 9.0, 3, spans=spans))
            assert str(pane.streaming.render()) == "pabcde"
            pane.finish(done(f"s{n}", "p", "abcde", 3, spans=spans))
        expect(pane, "ok", "p")
        pane.answer(SampleTokenEvent("ok", "ab", 9.0, 3, spans=[("ab", 0.05)]))
        pane.answer(SampleTokenEvent("ok", "cde", 9.0, 3, spans=[("cde", 0.9)]))
        streaming = pane.streaming.render()
        assert isinstance(streaming, Content)  # a Static shows rich Text as Content
        assert [(span.start, span.end) for span in streaming.spans] == [(0, 1), (1, 3)]
        pane.finish(done("ok", "p", "abcde", 3, spans=[("ab", 0.05), ("cde", 0.9)]))
        await pilot.pause()
        lines = log_lines(pane.completions)
        assert lines.count("pabcde") == len(hostile) + 1
        assert set(colours(pane.completions, 0).values()) == {None}  # fits, no usable odds
        for n in range(1, len(hostile)):
            assert set(colours(pane.completions, 2 * n).values()) == {None}
        assert colours(pane.completions, 2 * len(hostile)) == {"p": None, "ab": "red", "cde": None}
        pane.action_toggle_confidence()
        assert app.return_code is None

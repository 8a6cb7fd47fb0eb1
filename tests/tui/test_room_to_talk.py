"""At 80x24 (where most SSH sessions open) the prompt and its answer are on screen together."""

from textual.widgets import Static

from minigpt.events import ErrorEvent, SampleTokenEvent
from tests.tui.pilot import attached, until
from tui.generate_pane import GeneratePane

TALK_ROWS = 10  # the completions get at least this many rows while you talk


def on_screen(app, selector: str) -> bool:
    """Whether the widget is shown with at least one row inside the terminal."""
    region = app.query_one(selector).region
    return region.height > 0 and region.y >= 0 and region.bottom <= app.size.height


async def ask_and_stream(app, pilot) -> None:
    """Type "the cat" in the prompt, send it, and wait for its stream to show."""
    await pilot.press("g", *"the cat", "enter")
    await until(pilot, lambda: app.query_one(GeneratePane).has_class("-streaming"))


async def test_prompt_and_answer_fit_at_80x24_and_the_charts_come_back(scripted) -> None:
    """g, a prompt and enter: the completions get 10 rows beside the prompt; escape restores."""
    async with attached(scripted) as (app, pilot):
        assert on_screen(app, "#loss")
        await pilot.press("g", *"the cat", "enter")
        pane = app.query_one(GeneratePane)
        await until(pilot, lambda: bool(pane.finished))
        await pilot.pause()
        assert app.query_one("#completions").region.height >= TALK_ROWS
        assert on_screen(app, "#prompt") and on_screen(app, "#completions")
        assert not on_screen(app, "#loss")  # the charts gave way
        shown = [line.text for line in pane.completions.lines]
        assert any(line.startswith("the cat sat on the mat") for line in shown)
        await pilot.press("escape")  # leave the prompt: the charts come back
        await pilot.pause()
        assert app.focused is None and on_screen(app, "#loss")


async def test_a_streaming_answer_shows_under_its_prompt(scripted) -> None:
    """While a completion streams, its prompt and first words are on screen at 80x24."""
    scripted.respond = lambda command: [
        SampleTokenEvent(command["id"], " sat on", 900.0, 0).to_dict()
    ]
    async with attached(scripted) as (app, pilot):
        await ask_and_stream(app, pilot)
        await pilot.pause()
        assert on_screen(app, "#streaming") and on_screen(app, "#prompt")
        assert str(app.query_one("#streaming", Static).render()).startswith("the cat sat on")


async def test_escape_just_after_a_completion_ended_is_quiet(scripted) -> None:
    """The cancel that crossed the finished completion gets an error reply: no toast; and
    the next escape gives the keys back rather than cancelling again."""
    answers = {
        "sample": lambda c: [SampleTokenEvent(c["id"], " sat", 900.0, 0).to_dict()],
        "cancel_sample": lambda c: [
            ErrorEvent("no sample of yours is streaming", id=c["id"]).to_dict()
        ],
    }
    scripted.respond = lambda command: answers[command["cmd"]](command)
    async with attached(scripted) as (app, pilot):
        await ask_and_stream(app, pilot)
        await pilot.press("escape")
        await until(pilot, lambda: any(line.startswith("cancel_sample:") for line in app.log_lines))
        await pilot.pause(0.2)
        assert not app.query("Toast") and app.handler_errors == 0
        await pilot.press("escape")  # a second escape leaves, whatever the engine said
        assert app.focused is None and len(scripted.commands("cancel_sample")) == 1

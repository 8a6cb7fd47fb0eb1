"""The Inspect pane: the next-token odds as bars at each of generate's steps."""

from minigpt.config import Config, apply_values
from minigpt.events import Candidate, ErrorEvent, InspectionEvent, LensGuess
from tests.tui.pilot import attached, border_title, text, until
from tests.tui.scripted import evaluation, hello
from tui.inspect_pane import InspectPane


def odds(command: dict) -> list[dict]:
    """An engine's answer to an inspect command: 'the cat' with ' ' likeliest next."""
    position = command.get("position", 6)
    candidates = [
        Candidate("␣", 1, 0.6, 0.7, 0.8, 1.0),
        Candidate("s", 2, 0.3, 0.25, 0.2, 0.0),
        Candidate("↵", 3, 0.1, 0.05, 0.0, 0.0),
    ]
    tokens = [*"the", "␣", *"cat"]
    answer = InspectionEvent(
        step=40,
        prompt_tokens=tokens,
        prompt_ids=list(range(7)),
        position=position % 7,
        cropped=0,
        next_token=None,
        next_id=None,
        temperature=command["temperature"],
        top_k=command["top_k"],
        top_p=command["top_p"],
        entropy_bits=1.16,
        entropy_bits_raw=1.3,
        candidates=candidates,
        attention=None,
        attention_mean=None,
        id=command["id"],
        lens=[[LensGuess("s", 2, 0.3), LensGuess("␣", 1, 0.2)], [LensGuess("␣", 1, 0.6)]],
    )
    return [answer.to_dict()]


async def test_i_shows_the_odds_of_the_typed_prompt_and_controls_redraw_them(scripted) -> None:
    """i asks for the prompt's odds at the Generate pane's settings; the bars show each stage
    with percentages and the entropy; a new temperature asks again at once; left moves."""
    scripted.respond = lambda c: odds(c) if c["cmd"] == "inspect" else []
    async with attached(scripted) as (app, pilot):
        await pilot.press("g", *"the cat", "escape", "i")
        pane = app.query_one(InspectPane)
        await until(pilot, lambda: pane.shown is not None)
        (asked,) = scripted.commands("inspect")
        assert asked["prompt"] == "the cat" and "position" not in asked
        assert asked["temperature"] == 1.0 and asked["top_k"] == 0  # the Generate controls
        bars = text(app, "#inspect-bars")
        assert "60.0%" in bars and "70.0%" in bars and "100.0%" in bars and "cut" in bars
        assert "entropy 1.16 bits · temp 1" in border_title(pane)
        assert app.focused is pane and not app.query_one("#loss").region.height  # room at 80x24
        pane.controls["temperature"].value = "0.5"
        await until(pilot, lambda: scripted.commands("inspect")[-1]["temperature"] == 0.5)
        await pilot.press("left")
        await until(pilot, lambda: scripted.commands("inspect")[-1].get("position") == 5)
        assert app.handler_errors == 0


async def test_n_shows_each_blocks_own_guesses(scripted) -> None:
    """n: the bars give way to the logit lens, a row per block with its likeliest tokens;
    n again brings the bars back."""
    scripted.respond = lambda c: odds(c) if c["cmd"] == "inspect" else []
    async with attached(scripted) as (app, pilot):
        await pilot.press("g", *"the cat", "escape", "i")
        pane = app.query_one(InspectPane)
        await until(pilot, lambda: pane.shown is not None)
        await pilot.press("n")
        lens = text(app, "#inspect-bars").splitlines()
        assert lens[1].split() == ["block", "0", "s", "30%", "␣", "20%"]
        assert lens[2].split() == ["block", "1", "␣", "60%"]
        await pilot.press("n")
        assert "60.0%" in text(app, "#inspect-bars")


async def test_inspect_after_a_completion_marks_where_it_began_and_follows_training(
    scripted,
) -> None:
    """With no prompt typed, i looks at the last completion from its first generated token;
    f refreshes the bars at each eval; an engine error shows in the pane."""
    answers = {"sample": scripted.respond}
    scripted.respond = lambda c: odds(c) if c["cmd"] == "inspect" else answers["sample"](c)
    async with attached(scripted) as (app, pilot):
        await pilot.press("g", *"the", "enter")
        await until(pilot, lambda: bool(app.generate_pane.finished))
        await pilot.press("escape", "i")
        await until(pilot, lambda: bool(scripted.commands("inspect")))
        asked = scripted.commands("inspect")[-1]
        assert asked["prompt"] == "the sat on the mat"
        assert asked["position"] == 2  # the prompt's last token, counted from the start
        await pilot.press("f")
        scripted.feed(evaluation(50))
        await until(pilot, lambda: len(scripted.commands("inspect")) == 2)
        scripted.feed(ErrorEvent("position is outside the prompt", id=asked["id"]).to_dict())
        scripted.respond = lambda c: [ErrorEvent("no such thing", id=c["id"]).to_dict()]
        await pilot.press("right")
        await until(pilot, lambda: "no such thing" in str(app.inspect_pane.status.render()))


async def test_a_completion_longer_than_the_context_is_inspected_from_its_first_token(
    scripted,
) -> None:
    """The engine keeps a prompt's last context_length tokens; for a completion longer than
    that, i sends the prompt and only the first generated pieces (half the room the
    context leaves), at the prompt's last token counted from the start, so the odds shown
    first are those the first generated token came from."""
    answers = {"sample": scripted.respond}
    scripted.respond = lambda c: odds(c) if c["cmd"] == "inspect" else answers["sample"](c)
    config = apply_values(Config(), {"data.tokenizer": "char", "model.context_length": 8})
    async with attached(scripted, hello=hello(config=config)) as (app, pilot):
        await pilot.press("g", *"the", "enter")
        await until(pilot, lambda: bool(app.generate_pane.finished))
        assert app.generate_pane.finished[-1].text == " sat on the mat"  # 15 tokens, 4 spans
        await pilot.press("escape", "i")
        await until(pilot, lambda: bool(scripted.commands("inspect")))
        asked = scripted.commands("inspect")[-1]
        assert asked["prompt"] == "the sat on" and asked["position"] == 2  # 3 tokens, room 2

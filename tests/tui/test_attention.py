"""The attention heatmap in the Inspect pane: one head's weights for the prompt, in shades."""

from typing import Any

from rich.style import Style
from textual.pilot import Pilot

from tests.tui.pilot import attached, border_title, until
from tests.tui.scripted import ScriptedLink
from tests.tui.test_inspect_pane import odds
from tui.app import MiniGPTApp
from tui.attention import LABEL_WIDTH, LEVELS, AttentionMap


def diagonal(count: int, head: int) -> list[list[float]]:
    """Weights where head 0 puts everything on the first token and head 1 on the query itself."""
    return [
        [1.0 if key == (0 if head == 0 else query) else 0.0 for key in range(count)]
        for query in range(count)
    ]


def answer(command: dict, tokens: list[str], attention: Any, mean: Any) -> dict:
    """An engine's answer to an inspect command for these tokens, with these weights when
    the command asks for them."""
    (wire,) = odds(command)
    asked = bool(command.get("attention"))
    return wire | {
        "prompt_tokens": tokens,
        "prompt_ids": list(range(len(tokens))),
        "position": command.get("position", -1) % len(tokens),
        "attention": attention if asked else None,
        "attention_mean": mean if asked else None,
    }


def two_blocks(count: int) -> tuple[list, list]:
    """Two blocks of two heads (head 0: the first token, head 1: itself) and their means."""
    heads = [diagonal(count, 0), diagonal(count, 1)]
    mean = [[(a + b) / 2 for a, b in zip(*rows, strict=True)] for rows in zip(*heads, strict=True)]
    return [heads, heads], [mean, mean]


def answer_with(scripted: ScriptedLink, tokens: list[str], attention: Any, mean: Any) -> None:
    """Have the scripted engine answer inspect commands with these tokens and weights."""
    scripted.respond = lambda c: (
        [answer(c, tokens, attention, mean)] if c["cmd"] == "inspect" else []
    )


async def inspect(pilot: Pilot, app: MiniGPTApp, prompt: str) -> None:
    """Type a prompt, press i then a, and wait for the heatmap to draw the weights."""
    await pilot.press("g", *prompt, "escape", "i", "a")
    heatmap = app.query_one(AttentionMap)
    await until(pilot, lambda: heatmap.matrix() is not None)


def shade(heatmap: AttentionMap, query: int, key: int) -> tuple[int, int, int] | None:
    """The colour on screen at (query, key): the top or bottom half of its cell; None if blank."""
    region = heatmap.cells.region
    x, y = region.x + 2 * LABEL_WIDTH + 2 + key, region.y + 1 + query // 2  # under the axis
    strip = heatmap.app.screen._compositor.render_strips()[y].crop(x, x + 1)
    (segment,) = list(strip)
    style = segment.style or Style()
    half = {"▀": style.color if query % 2 == 0 else style.bgcolor}
    half["▄"] = None if query % 2 == 0 else style.color
    color = half.get(segment.text)
    blank = heatmap.cells.background_colors[1].rgb  # what shows where a half has no shade
    return None if color is None or color.get_truecolor() == blank else color.get_truecolor()


def level_colour(heatmap: AttentionMap, level: int) -> tuple[int, int, int]:
    """The colour of a shade, 0 (lightest) to LEVELS - 1 (darkest)."""
    color = heatmap.shades()[level].color
    assert color is not None
    return color.get_truecolor()


async def test_a_toggles_the_heatmap_and_asks_for_attention(scripted) -> None:
    """a shows the heatmap and the next inspect command carries attention=True; a again hides
    it and the commands stop asking."""
    tokens = [*"the", "␣", *"cat"]
    answer_with(scripted, tokens, *two_blocks(len(tokens)))
    async with attached(scripted) as (app, pilot):
        await inspect(pilot, app, "the cat")
        first, second = scripted.commands("inspect")
        assert "attention" not in first and second["attention"] is True
        heatmap = app.query_one(AttentionMap)
        assert heatmap.region.height and not app.query_one("#inspect-bars").region.height
        await pilot.press("a")
        await until(pilot, lambda: len(scripted.commands("inspect")) == 3)
        assert "attention" not in scripted.commands("inspect")[-1]
        await until(pilot, lambda: not heatmap.region.height)
        assert app.query_one("#inspect-bars").region.height
        assert app.handler_errors == 0


def screen_text(app: MiniGPTApp) -> str:
    """What the terminal shows, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def test_the_weights_show_in_shades_and_the_keys_move_between_heads(scripted) -> None:
    """A weight of 1.0 draws the darkest shade at its cell and 0 the lightest, above the
    diagonal is blank; ] and . move block and head (wrapping) and m shows the mean, the title
    following each."""
    tokens = [*"the", "␣", *"cat"]
    answer_with(scripted, tokens, *two_blocks(len(tokens)))
    async with attached(scripted) as (app, pilot):
        await inspect(pilot, app, "the cat")
        heatmap = app.query_one(AttentionMap)
        darkest, lightest = level_colour(heatmap, LEVELS - 1), level_colour(heatmap, 0)
        assert heatmap.border_title == (
            "block 0 of 2 · head 0 of 2 · query row 6 attends to columns"
        )
        assert shade(heatmap, 5, 0) == darkest and shade(heatmap, 5, 5) == lightest
        assert shade(heatmap, 5, 6) is None and shade(heatmap, 0, 3) is None  # causal
        await pilot.press("full_stop")
        assert "head 1 of 2" in heatmap.border_title
        assert shade(heatmap, 5, 0) == lightest and shade(heatmap, 5, 5) == darkest
        await pilot.press("full_stop")
        assert "head 0 of 2" in heatmap.border_title
        await pilot.press("right_square_bracket")
        assert "block 1 of 2" in heatmap.border_title
        await pilot.press("right_square_bracket", "m")
        assert heatmap.border_title.startswith("block 0 of 2 · mean of heads")
        assert shade(heatmap, 3, 0) == level_colour(heatmap, LEVELS // 2)  # half of it
        assert shade(heatmap, 0, 0) == darkest  # the first token has only itself
        await pilot.press("left")
        await until(pilot, lambda: "query row 5" in border_title(heatmap))
        assert "◀ row 5 a: 50% on" in screen_text(app)
        assert app.handler_errors == 0


async def test_a_24_token_prompt_fits_80x24(scripted) -> None:
    """At 80x24 the heatmap of a 24-token prompt has every row on screen, labelled."""
    tokens = [*"the quick brown fox jump"]
    answer_with(scripted, tokens, *two_blocks(len(tokens)))
    async with attached(scripted) as (app, pilot):
        await inspect(pilot, app, "".join(tokens))
        heatmap = app.query_one(AttentionMap)
        lines = str(heatmap.cells.render()).split("\n")
        assert len(lines) == 1 + 12  # the axis, two rows a line
        assert heatmap.cells.region.height == 13
        assert heatmap.region.contains_region(heatmap.cells.region)
        shown = screen_text(app)
        assert "the quick brown fox jump" in shown  # the axis
        assert "◀ row 23 p:" in shown


async def test_hostile_attention_draws_without_error(scripted) -> None:
    """Ragged rows, None, NaN, strings, a missing block or head and no mean draw as blanks
    (or a line saying there are none), never an error."""
    tokens = [*"the", "␣", *"cat"]
    nan = float("nan")
    ragged = [[1.0], [], None, [nan, "x", 0.5, 2.0], [0.1] * 20, "row", [-1.0, 1e308]]
    cases = [
        ([[ragged]], None),
        ([[ragged, None]], [ragged]),
        ([None, [[[]]]], [[nan]]),
        ("junk", {"a": 1}),
        ([], []),
    ]
    async with attached(scripted) as (app, pilot):
        answer_with(scripted, tokens, *cases[0])
        await inspect(pilot, app, "the cat")
        heatmap = app.query_one(AttentionMap)
        assert shade(heatmap, 0, 0) is not None and shade(heatmap, 1, 0) is None  # []
        for attention, mean in cases[1:]:
            answer_with(scripted, tokens, attention, mean)
            asked = len(scripted.commands("inspect"))
            await pilot.press("left")
            await until(
                pilot,
                lambda: (
                    heatmap.shown is not None
                    and heatmap.shown.id == scripted.commands("inspect")[-1]["id"]
                ),
            )
            assert len(scripted.commands("inspect")) == asked + 1
            await pilot.press("right_square_bracket", "full_stop", "m", "comma", "m")
            await pilot.pause()
        assert "No attention weights" in screen_text(app)
        assert app.handler_errors == 0

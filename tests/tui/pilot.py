"""Helpers for driving the dashboard with Pilot."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from minigpt.config import Config
from tests.tui import scripted
from tui.app import MiniGPTApp, make_app
from tui.link import Link
from tui.top_row import CONNECTING, LOST


async def until(pilot: Pilot, test: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let the app run until test() holds; fail after timeout seconds."""
    for _ in range(int(timeout / 0.05)):
        if test():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached in time")


@asynccontextmanager
async def attached(
    link: Link, size: tuple[int, int] = (80, 24), hello: scripted.Wire | None = None
) -> AsyncIterator[tuple[MiniGPTApp, Pilot]]:
    """The dashboard on link once it applied the engine's hello (fed here when scripted)."""
    app = make_app(link)
    async with app.run_test(size=size) as pilot:
        if isinstance(link, scripted.ScriptedLink):
            link.feed(hello or scripted.hello())
        await until(pilot, lambda: app.state != CONNECTING)
        assert app.state != LOST, f"no hello: {app.log_lines[-1:]}"
        yield app, pilot


def text(app: MiniGPTApp, selector: str) -> str:
    """What a Static shows."""
    return str(app.query_one(selector, Static).render())


def border_title(widget: Widget) -> str:
    """A widget's border title, which the test expects it to have."""
    shown = widget.border_title
    assert shown is not None, f"{widget} has no border title"
    return shown


def shown_step(app: MiniGPTApp) -> int:
    """The step the top row's numbers hold, which a test of a training run expects known."""
    step = app.top.stats.step
    assert step is not None, "the top row holds no step"
    return step


def running_config(app: MiniGPTApp) -> Config:
    """The running config the Config pane holds, which a test past the hello expects known."""
    config = app.config_pane.running
    assert config is not None, "the Config pane holds no running config"
    return config


async def train_until(pilot: Pilot, app: MiniGPTApp, state: str) -> None:
    """Wait for the idle engine, press space, and wait for `state` (running, finished...)."""
    await until(pilot, lambda: app.state == "idle")
    await pilot.press("space")
    await until(pilot, lambda: app.state == state)


async def pause_and_resume(pilot: Pilot, app: MiniGPTApp, hold: float = 0.5) -> int:
    """space pauses (the step stays put for `hold` seconds), space resumes; the paused step."""
    await pilot.press("space")
    await until(pilot, lambda: app.state == "paused")
    paused_at = shown_step(app)
    await pilot.pause(hold)
    assert app.top.stats.step == paused_at
    await pilot.press("space")
    await until(pilot, lambda: app.state == "running" and shown_step(app) > paused_at)
    return paused_at

"""Helpers for driving the dashboard with Pilot."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from textual.pilot import Pilot
from textual.widgets import Static

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


async def train_until(pilot: Pilot, app: MiniGPTApp, state: str) -> None:
    """Wait for the idle engine, press space, and wait for `state` (running, finished...)."""
    await until(pilot, lambda: app.state == "idle")
    await pilot.press("space")
    await until(pilot, lambda: app.state == state)


async def pause_and_resume(pilot: Pilot, app: MiniGPTApp, hold: float = 0.5) -> int:
    """space pauses (the step stays put for `hold` seconds), space resumes; the paused step."""
    await pilot.press("space")
    await until(pilot, lambda: app.state == "paused")
    paused_at = app.top.stats.step
    await pilot.pause(hold)
    assert app.top.stats.step == paused_at
    await pilot.press("space")
    await until(pilot, lambda: app.state == "running" and app.top.stats.step > paused_at)
    return paused_at

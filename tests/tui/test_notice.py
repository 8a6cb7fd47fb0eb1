"""A notice from the engine in the dashboard: the terminal's bell and a desktop
notification, written to the terminal as they are, or wrapped for tmux."""

from typing import Any

import pytest

from minigpt.events import NoticeEvent
from tests.tui.pilot import attached, until
from tests.tui.scripted import ScriptedLink
from tui.app import MiniGPTApp

# A message whose escape would set the window's title, were it passed on as it came.
NOTICE = NoticeEvent("stalled", "run; 2: no step for 5m00s", "step 9\x1b]0;owned\x07 waits", 8)
BARE = (
    "\a\x1b]9;run, 2: no step for 5m00s: step 9 ]0;owned  waits\a"
    "\x1b]777;notify;run, 2: no step for 5m00s;step 9 ]0;owned  waits\a"
)
TMUX = (
    "\a\x1bPtmux;\x1b\x1b]9;run, 2: no step for 5m00s: step 9 ]0;owned  waits\a\x1b\\"
    "\x1bPtmux;\x1b\x1b]777;notify;run, 2: no step for 5m00s;step 9 ]0;owned  waits\a\x1b\\"
)


def shown_toasts(app: MiniGPTApp, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The titles of the toasts the app shows from now on, as a list that fills."""
    titles: list[str] = []
    notify = app.notify

    def kept(message: str, *, title: str = "", **kwargs: Any) -> None:
        """App.notify, its title kept."""
        titles.append(title)
        notify(message, title=title, **kwargs)

    monkeypatch.setattr(app, "notify", kept)
    return titles


@pytest.mark.parametrize(("tmux", "expected"), [("", BARE), ("/tmp/tmux-1000/default,1,0", TMUX)])
async def test_a_notice_rings_the_bell_and_notifies_the_desktop(
    scripted: ScriptedLink, monkeypatch: pytest.MonkeyPatch, tmux: str, expected: str
) -> None:
    """A notice writes the bell, then OSC 9 and OSC 777 with its title and message
    (control characters blanked, no ";" in the title), wrapped for passthrough when $TMUX
    says tmux runs the dashboard; it also shows in a toast and the Log."""
    monkeypatch.setenv("TMUX", tmux)
    async with attached(scripted) as (app, pilot):
        written: list[str] = []
        assert app._driver is not None, "run_test drives the app headless"
        monkeypatch.setattr(app._driver, "write", written.append)
        toasts = shown_toasts(app, monkeypatch)
        scripted.feed(NOTICE.to_dict())
        await until(pilot, lambda: any(line.startswith("notice: ") for line in app.log_lines))
        assert "".join(written).count("\a") == expected.count("\a")
        assert expected in written
        assert toasts == [NOTICE.title]


async def test_a_notice_on_the_headless_driver_writes_nowhere_and_harms_nothing(
    scripted: ScriptedLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the test harness's own driver a notice, an alert's included, is logged with
    no toast of its own and the dashboard goes on."""
    async with attached(scripted) as (app, pilot):
        toasts = shown_toasts(app, monkeypatch)
        alert = NoticeEvent("alert", "run: grad_spike alert", "the gradient norm jumped", 4)
        scripted.feed(alert.to_dict(), NOTICE.to_dict())
        await until(pilot, lambda: sum(line.startswith("notice: ") for line in app.log_lines) == 2)
        assert toasts == [NOTICE.title]
        assert app.handler_errors == 0

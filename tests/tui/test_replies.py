"""Replies reach the pane that asked by the rule each event's class declares (tui/replies.py)."""

from dataclasses import dataclass
from typing import ClassVar

import pytest

from minigpt.events import EVENTS, Audience, Event, SampleDoneEvent, SampleTokenEvent
from tests.tui.pilot import attached, until
from tests.tui.scripted import ScriptedLink
from tui.messages import Ask


@dataclass
class TrickleEvent(Event):
    """A second streaming reply, made up: a piece of an answer, more to come."""

    name: ClassVar[str] = "trickle"
    audience: ClassVar[Audience] = Audience.ASKER
    ends_request: ClassVar[bool] = False
    id: str
    text: str


@dataclass
class TrickledEvent(Event):
    """The made-up stream's last reply."""

    name: ClassVar[str] = "trickled"
    audience: ClassVar[Audience] = Audience.ASKER
    id: str


class Listener:
    """An asker that keeps what it hears."""

    def __init__(self) -> None:
        """Nothing asked or heard yet."""
        self.request: str | None = None
        self.heard: list[Event] = []

    def sent(self, ask: Ask, request: str | None) -> None:
        """Keep the id the command went out with."""
        self.request = request

    def answer(self, event: Event) -> None:
        """Keep the reply."""
        self.heard.append(event)


async def test_a_second_streaming_reply_needs_only_its_declaration(
    scripted: ScriptedLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply class the app has never heard of, declared to stream, reaches its asker
    piece by piece until its last reply; one after that is logged, not answered."""
    monkeypatch.setitem(EVENTS, TrickleEvent.name, TrickleEvent)
    monkeypatch.setitem(EVENTS, TrickledEvent.name, TrickledEvent)
    listener = Listener()
    async with attached(scripted) as (app, pilot):
        app.post_message(Ask(listener, "trickle"))
        await until(pilot, lambda: listener.request is not None)
        request = str(listener.request)
        pieces = [TrickleEvent(request, "a"), TrickleEvent(request, "b")]
        scripted.feed(*(e.to_dict() for e in [*pieces, TrickledEvent(request)]))
        await until(pilot, lambda: len(listener.heard) == 3)
        assert [e.name for e in listener.heard] == ["trickle", "trickle", "trickled"]
        scripted.feed(TrickleEvent(request, "late").to_dict())
        await until(pilot, lambda: any(f"trickle for {request}" in x for x in app.log_lines))
        assert len(listener.heard) == 3 and app.handler_errors == 0


async def test_a_reply_no_pane_waits_for_is_logged(scripted: ScriptedLink) -> None:
    """An inspection whose request was forgotten (or asked of an earlier engine) shows in the
    Log, cut short, rather than vanishing."""
    async with attached(scripted) as (app, pilot):
        weights = [[[[0.5] * 64] * 64] * 4] * 2  # [block][head][query][key]
        scripted.feed({"event": "inspection", "id": "forgotten-7", "attention": weights})
        await until(pilot, lambda: any("inspection for forgotten-7" in x for x in app.log_lines))
        (line,) = [x for x in app.log_lines if "forgotten-7" in x]
        assert "no pane waits for" in line and len(line) <= 300
        assert app.handler_errors == 0


async def test_another_clients_stream_is_news_not_a_stray_reply(scripted: ScriptedLink) -> None:
    """Another client's completion, carrying its id, streams nowhere and logs nothing here,
    and its end is listed in the Generate pane."""
    async with attached(scripted) as (app, pilot):
        logged = len(app.log_lines)
        scripted.feed(SampleTokenEvent("theirs-1", " sat", 900.0, 3).to_dict())
        done = SampleDoneEvent("theirs-1", "the cat", " sat", 4, 900.0, 3, 7, 0, {})
        scripted.feed(done.to_dict())
        await until(pilot, lambda: bool(app.generate_pane.finished))
        assert app.generate_pane.finished[0].prompt == "the cat"
        assert not app.generate_pane.streams and len(app.log_lines) == logged

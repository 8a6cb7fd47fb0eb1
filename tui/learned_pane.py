"""The Learned pane: what the model knows now that it did not know before.

At each eval the engine measures the model and keeps a record in the run's learned/
folder (minigpt/learned/, minigpt/rundir/learned.py). This pane shows one eval's record
at a time, in four views (keys 1-4): the probe text shaded by surprise, with the
model's guesses at the cursor token; the val loss by position in the context and the
context gain; each head's roles, with its induction score across evals; and the map of
the token embeddings. Left/right step through the evals, from step 0 to the last; at the
last one the pane follows training, showing each new eval as its record arrives (the app
hands them over). d shows each probe token's change since the eval before.

Records come from the run directory, read when needed: a long run's hundreds of evals
cost nothing until shown, and a finished run replays from its files. A run trained
before the views existed, or with train.learned_views off, says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import ContentSwitcher, Static

from minigpt.display import cells, number, token_label
from minigpt.events import LearnedEvent, MapPoints
from minigpt.learned.reading import (
    Probe,
    change_share,
    changes,
    guesses,
    most_moved,
    sparkline,
    surprise,
)
from minigpt.rundir.history_index import spread
from minigpt.rundir.learned import LearnedRecords
from tui.head_table import HeadTable
from tui.learned_charts import MapChart, PositionChart
from tui.probe_text import ProbeText
from tui.status_line import StatusLine

VIEWS = ("probe", "positions", "heads", "map")
HISTORY_EVALS = 48  # evals read for the heads' and the context gain's history, spread
CACHED = 8  # whole records kept in memory
MOVED = 5  # tokens listed as moved most, with the change on
TOKEN_CELLS = 12  # the most a token takes in the line under the text
NO_RECORDS = (
    "No learned records in this run yet: they come with each eval. A run trained before "
    "they existed, or with train.learned_views = false, has none."
)


def summary_of(record: LearnedEvent) -> LearnedEvent:
    """A record with only what the histories need (its step, context gain and heads): a
    dashboard following a long run keeps one per eval."""
    return dataclasses.replace(
        record,
        probe_loss=[],
        guess_ids=[],
        guess_probs=[],
        position_loss=[],
        embedding_map=MapPoints([], [], []),
    )


def short(token: str) -> str:
    """A token's text cut to TOKEN_CELLS cells (a table rule can be a token of 60 dashes)."""
    return token_label(token, TOKEN_CELLS).rstrip() if cells(token) > TOKEN_CELLS else token


class LearnedPane(Vertical, can_focus=True):
    """One eval's learned views, and the keys to step through the evals."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "eval(-1)", "Earlier eval"),
        Binding("right", "eval(1)", "Later eval"),
        Binding("home", "eval_at(0)", "First eval", show=False),
        Binding("end", "eval_at(-1)", "Latest eval (follow)", show=False),
        Binding("1", "view('probe')", "Probe"),
        Binding("2", "view('positions')", "Positions"),
        Binding("3", "view('heads')", "Heads"),
        Binding("4", "view('map')", "Map"),
        Binding("d", "toggle_change", "Change"),
        Binding("[", "token(-1)", "Earlier token", show=False),
        Binding("]", "token(1)", "Later token", show=False),
    ]

    run_dir: reactive[Path] = reactive(Path())

    def __init__(self) -> None:
        """Nothing read yet."""
        super().__init__()
        self.records: LearnedRecords | None = None
        self.probe: Probe | None = None
        self.steps: list[int] = []
        self.index = -1  # into steps; the last: following training
        self.cached: dict[int, LearnedEvent] = {}
        self.summaries: dict[int, LearnedEvent] = {}  # step -> context gain and heads only
        self.change = False
        self.cursor = 1  # the probe token whose guesses are shown (the first has none)
        self.loaded = False

    def compose(self) -> ComposeResult:
        """A status line, the four views, and the line about the probe's cursor."""
        yield StatusLine(id="learned-status")
        with ContentSwitcher(initial="probe", id="learned-views"):
            with VerticalScroll(id="probe"):
                yield ProbeText(id="probe-text")
            yield PositionChart(id="positions")
            yield HeadTable(id="heads")
            yield MapChart(id="map")
        yield Static(id="learned-detail", markup=False)

    def watch_run_dir(self) -> None:
        """Another run: forget what was read of the last one."""
        self.records = LearnedRecords(self.run_dir)
        self.probe, self.steps, self.index = None, [], -1
        self.cached.clear()
        self.summaries.clear()
        self.loaded = False
        if self.display and self.is_mounted:
            self.load()

    def on_show(self) -> None:
        """Read the run's records the first time the pane is shown."""
        if not self.loaded:
            self.load()

    def load(self) -> None:
        """Read which evals have records, and the probe they share; show the last."""
        self.loaded = True
        if self.records is None:
            return
        self.probe = Probe.of(self.records.probe())
        self.steps = sorted(set(self.records.steps()) | set(self.cached))
        self.index = len(self.steps) - 1
        self.redraw()

    def add(self, event: LearnedEvent) -> None:
        """A new eval's record, broadcast by the engine: shown at once when following."""
        if event.step is None:
            return
        following = self.index == len(self.steps) - 1
        self._cache(event.step, event)
        self.summaries[event.step] = summary_of(event)
        self.steps = sorted({*self.steps, event.step})
        if following:
            self.index = self.steps.index(event.step)
        if self.loaded:
            if self.probe is None and self.records is not None:
                self.probe = Probe.of(self.records.probe())
            self.redraw()

    def record(self, step: int) -> LearnedEvent | None:
        """The whole record of step, from memory or its file."""
        if step not in self.cached and self.records is not None:
            record = self.records.record(step)
            if record is None:
                return None
            self._cache(step, record)
        return self.cached.get(step)

    def _cache(self, step: int, record: LearnedEvent) -> None:
        """Keep a whole record in memory, forgetting the oldest kept past CACHED."""
        self.cached[step] = record
        while len(self.cached) > CACHED:
            self.cached.pop(next(iter(self.cached)))

    def history(self) -> list[LearnedEvent]:
        """Context gain and head roles of up to HISTORY_EVALS evals spread over the run."""
        picked = [self.steps[i] for i in spread(len(self.steps), HISTORY_EVALS)]
        out = []
        for step in picked:
            if step not in self.summaries and self.records is not None:
                summary = self.records.summary(step)
                if summary is not None:
                    self.summaries[step] = summary
            if step in self.summaries:
                out.append(self.summaries[step])
        return out

    def redraw(self) -> None:
        """Show the current eval in the current view."""
        status = self.query_one("#learned-status", StatusLine)
        detail = self.query_one("#learned-detail", Static)
        if not self.steps:
            status.say(NO_RECORDS)
            detail.update("")
            return
        step = self.steps[self.index]
        record = self.record(step)
        following = " (following)" if self.index == len(self.steps) - 1 else ""
        where = f"step {number(step, ',')} · eval {self.index + 1}/{len(self.steps)}{following}"
        if record is None:
            status.say(f"{where}: its record cannot be read", error=True)
            return
        earlier = self.record(self.steps[self.index - 1]) if self.index > 0 else None
        view = self.query_one(ContentSwitcher).current
        status.say(f"{where} · context gain {number(record.context_gain, '.3f')}")
        if view == "probe":
            detail.update(self._probe(record, earlier))
        elif view == "positions":
            first = self.record(self.steps[0]) if self.steps[0] != step else None
            self._positions(record, earlier if self.change else first)
            detail.update(self._gains())
        elif view == "heads":
            self._heads(record)
            detail.update("prev: looks one token back · induct: copies what followed last time")
        else:
            self._map(record)
            detail.update("")

    def _probe(self, record: LearnedEvent, earlier: LearnedEvent | None) -> str:
        """Shade the probe text; the detail line for the cursor token (and the movers)."""
        probe = self.probe
        text = self.query_one(ProbeText)
        if probe is None or not probe.text:
            text.update("This run kept no probe text (learned/probe.json).")
            return ""
        self.cursor = max(1, min(self.cursor, len(probe.text) - 1))
        vocab = max(2, len(probe.vocab))
        change = changes(record, earlier) if self.change and earlier else None
        if change is not None:
            values = [change_share(c, vocab) for c in change]
        else:
            values = [surprise(loss, vocab) for loss in record.probe_loss]
        text.show(probe.text, values, change is not None, self.cursor)
        self._scroll_to_cursor(text)
        i = self.cursor
        loss = record.probe_loss[i] if i < len(record.probe_loss) else None
        top = " · ".join(f"{short(probe.token(t))} {p:.0%}" for t, p in guesses(record, i))
        line = f"{short(probe.text[i])!r}: loss {number(loss, '.2f')} · guessed {top or '-'}"
        if change is not None:
            moved = most_moved(probe.text, change, MOVED)
            line += "\nmoved most: " + ", ".join(f"{short(m.text)} {m.change:+.1f}" for m in moved)
        elif self.change:
            line += "\n(the first eval has nothing to compare with)"
        return line

    def _scroll_to_cursor(self, text: ProbeText) -> None:
        """Keep the cursor's line in sight."""
        scroll = self.query_one("#probe", VerticalScroll)
        row = text.line_of(self.cursor)
        if not scroll.scroll_y <= row < scroll.scroll_y + max(1, scroll.size.height):
            scroll.scroll_to(y=max(0, row - 1), animate=False)

    def _positions(self, record: LearnedEvent, other: LearnedEvent | None) -> None:
        """The position curve now and at the other eval."""
        curves = [(f"step {number(record.step, ',')}", record.position_loss)]
        if other is not None:
            curves.append((f"step {number(other.step, ',')}", other.position_loss))
        self.query_one(PositionChart).set_curves(curves)

    def _gains(self) -> str:
        """The context gain across evals, as a line."""
        gains = [summary.context_gain for summary in self.history()]
        last = number(gains[-1] if gains else None, ".3f")
        return f"context gain across evals: {sparkline(gains)}  (now {last})"

    def _heads(self, record: LearnedEvent) -> None:
        """The head table, with each head's induction score across evals."""
        history: dict[tuple[int, int], list[float | None]] = {}
        for summary in self.history():
            for b, block in enumerate(summary.heads):
                for h, roles in enumerate(block):
                    history.setdefault((b, h), []).append(roles.induction)
        self.query_one(HeadTable).show(record.heads, history)

    def _map(self, record: LearnedEvent) -> None:
        """The embedding map."""
        probe = self.probe or Probe([], [])
        points = record.embedding_map
        named = [
            (probe.token(i), x, y) for i, x, y in zip(points.ids, points.x, points.y, strict=False)
        ]
        self.query_one(MapChart).set_points(named, record.step)

    def action_eval(self, delta: int) -> None:
        """left/right: the eval before or after."""
        if self.steps:
            self.index = max(0, min(len(self.steps) - 1, self.index + delta))
            self.redraw()

    def action_eval_at(self, index: int) -> None:
        """home/end: the first eval, or the last (and follow training)."""
        if self.steps:
            self.index = index % len(self.steps)
            self.redraw()

    def action_view(self, view: str) -> None:
        """1-4: show one of the views."""
        self.query_one(ContentSwitcher).current = view
        self.redraw()

    def action_toggle_change(self) -> None:
        """d: shade the probe by each token's change since the eval before (or by surprise)."""
        self.change = not self.change
        self.redraw()

    def action_token(self, delta: int) -> None:
        """[ and ]: move the probe's cursor."""
        self.cursor += delta
        self.redraw()

    @on(ProbeText.Pointed)
    def pointed(self, message: ProbeText.Pointed) -> None:
        """The mouse points at a token: its guesses."""
        self.cursor = message.index
        self.redraw()

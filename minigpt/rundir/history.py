"""A run's history as a view needs it: the whole curve, thinned, at a cost that does not grow
with the run's length.

Every reader of a run's past goes through `History`: the engine's hello (which lets a
dashboard redraw everything), and the dashboard's compare overlay. Steps, evaluations, alerts
and config changes come from the run's index of metrics.jsonl (history_index.py); the latest
completions from the end of samples.jsonl. A line that is no usable event (journal.usable: one
rule for every reader) is skipped and counted rather than trusted, and said once per file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from minigpt.events import AlertEvent, ConfigAppliedEvent, EvalEvent, SampleDoneEvent
from minigpt.rundir.history_index import HistoryIndex
from minigpt.rundir.layout import RunDir

STEP_POINTS = 2000  # step losses in a history, spread over the whole run
EVAL_POINTS = 2000  # evaluations, likewise
LATEST_MARKS = 1000  # the latest alerts, and the latest config changes
RECENT_SAMPLES = 100  # the latest completions (samples.jsonl keeps them all)


@dataclass
class History:
    """Step losses and evaluations spread over the run, the latest alerts, config changes
    and completions, and what could not be read."""

    steps: list[tuple[int | None, float | None, float | None]] = field(default_factory=list)
    evals: list[EvalEvent] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    config_changes: list[ConfigAppliedEvent] = field(default_factory=list)
    train_seconds: float = 0.0  # training time so far, across resumes
    samples: list[SampleDoneEvent] = field(default_factory=list)
    skipped: int = 0  # lines read that were not usable events
    notes: list[str] = field(default_factory=list)  # one line per file with skipped lines

    @classmethod
    def of(cls, index: HistoryIndex, run_dir: RunDir) -> History:
        """The history an index holds (synced by the caller), with the latest completions.
        An index damaged since it was opened is rebuilt first."""
        try:
            return cls._of(index, run_dir)
        except sqlite3.DatabaseError:
            index.reopen()
            index.sync()
            return cls._of(index, run_dir)

    @classmethod
    def _of(cls, index: HistoryIndex, run_dir: RunDir) -> History:
        """of() without a second chance."""
        facts = index.facts()
        history = cls(
            steps=index.thinned_steps(STEP_POINTS),
            evals=index.thinned_evals(EVAL_POINTS),
            alerts=index.latest(AlertEvent, LATEST_MARKS),
            config_changes=index.latest(ConfigAppliedEvent, LATEST_MARKS),
            train_seconds=index.train_seconds() or 0.0,
        )
        samples = run_dir.read_samples(last=RECENT_SAMPLES)
        history.samples = list(samples)
        for skipped in (facts.skipped, samples.skipped):
            history.skipped += skipped.count
            if note := skipped.note():
                history.notes.append(note)
        return history

    @classmethod
    def read(cls, run_dir: RunDir, progress: Callable[[str, float], None] | None = None) -> History:
        """The history on disk, indexing what the index does not hold yet."""
        index = HistoryIndex(run_dir)
        try:
            index.sync(progress)
            return cls.of(index, run_dir)
        finally:
            index.close()

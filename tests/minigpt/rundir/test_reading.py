"""One rule for a usable line of a run file, whoever reads it: the same odd lines are skipped,
counted and said the same way whether the file is read whole, read from its end, indexed,
glanced at by `minigpt status` or opened as a hello's history."""

import json
from pathlib import Path

import pytest

from minigpt.cli.status import Glance
from minigpt.events import CheckpointEvent, EvalEvent, Event, SampleDoneEvent, StepEvent
from minigpt.rundir.history import History
from minigpt.rundir.journal import INT64, METRICS_EVENTS, SAMPLES_EVENTS, Skipped, usable
from minigpt.rundir.layout import RunDir
from tests.minigpt.rundir.unusable import BAD_METRICS, BAD_SAMPLES, unusable

TORN_END = b'{"event": "step", "st'  # a line still being written: no line yet, for anyone


def line(event: Event) -> bytes:
    """An event as the engine writes it (without its newline)."""
    return json.dumps(event.to_dict()).encode()


def step(n: int) -> StepEvent:
    """A step event."""
    return StepEvent(n, 3 - n / 10, 1e-3, 1e5, 2.0, n / 100)


def sample(step: int) -> SampleDoneEvent:
    """A completion at step."""
    return SampleDoneEvent(f"s-{step}", "the", " cat", 4, 50.0, step, 1, 0, {})


@pytest.mark.parametrize(
    ("kinds", "own", "other"),
    [(METRICS_EVENTS, "step", "sample_done"), (SAMPLES_EVENTS, "sample_done", "step")],
)
def test_a_usable_line_is_an_event_its_file_holds_with_a_whole_step(kinds, own, other) -> None:
    """Each odd line is no usable line of either file; an event the file holds with a step
    SQLite can keep, however far out, is."""
    assert [usable(odd, kinds) for odd in unusable(own, other)] == [None] * len(BAD_METRICS)
    for step in (-INT64, 0, INT64 - 1):
        event = usable(f'{{"event": "{own}", "step": {step}}}'.encode(), kinds)
        assert isinstance(event, kinds) and event.step == step


def test_what_was_skipped_is_said_in_one_line() -> None:
    """Nothing skipped says nothing; a whole file names the first line skipped, a file's end
    how many lines were read."""
    path = Path("runs/a/metrics.jsonl")
    assert Skipped(path).note() is None
    assert (
        Skipped(path, 1, first=4).note()
        == f"{path}: 1 unreadable line skipped (the first is line 4)"
    )
    assert (
        Skipped(path, 3, among=9).note() == f"{path}: 3 unreadable lines among its last 9 skipped"
    )


def test_every_reader_skips_the_same_lines(tmp_path: Path) -> None:
    """Read whole, read from the end, glanced at with and without an index, and opened as a
    history: the same events, the same count, the first one at the same line (a blank line
    counts in the numbering but is never skipped), and the torn end read by nobody."""
    run_dir = RunDir(tmp_path / "run")
    run_dir.create()
    good = [
        step(1),
        EvalEvent(1, 3.0, 3.1, 3.1),
        step(2),
        CheckpointEvent("model.ckpt", 2),
        step(3),
    ]
    metrics = [line(good[0]), *BAD_METRICS, b"", *map(line, good[1:])]
    run_dir.metrics.write_bytes(b"".join(text + b"\n" for text in metrics) + TORN_END)
    samples = [line(sample(1)), *BAD_SAMPLES, line(sample(2))]
    run_dir.samples.write_bytes(b"".join(text + b"\n" for text in samples) + TORN_END)

    whole = run_dir.read_metrics()
    assert list(whole) == good
    assert whole.skipped == Skipped(run_dir.metrics, len(BAD_METRICS), first=2)
    end = run_dir.read_metrics(last=100)
    assert list(end) == good
    assert end.skipped == Skipped(run_dir.metrics, len(BAD_METRICS), among=len(metrics) - 1)
    glance = Glance.of(run_dir)  # no index yet: the end of the file, and none is made
    assert (glance.skipped, glance.last_step, glance.last_eval) == (len(BAD_METRICS), 3, good[1])
    assert not run_dir.index.exists()

    history = History.read(run_dir)
    recent = run_dir.read_samples(last=100)
    assert history.samples == list(recent) == [sample(1), sample(2)]
    assert history.skipped == len(BAD_METRICS) + len(BAD_SAMPLES)
    assert history.notes == [whole.skipped.note(), recent.skipped.note()]
    assert Glance.of(run_dir).skipped == len(BAD_METRICS)  # now from the index

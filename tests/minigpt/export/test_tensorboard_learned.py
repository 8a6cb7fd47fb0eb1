"""minigpt export --tensorboard carries the learned views: each record's context gain and
each head's scores, one point per record, read back by TensorBoard's own reader."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from minigpt.cli.main import main
from minigpt.events import EvalEvent, HeadRoles, LearnedEvent, MapPoints
from minigpt.export.tensorboard import CONTEXT_GAIN, HEAD_SCALARS, head_tag
from minigpt.rundir.layout import RunDir
from minigpt.rundir.learned import LearnedRecords

EVALS = [0, 5, 10]
BLOCKS, HEADS = 2, 2
WALL = 1_700_000_000.0  # a record's wall time is WALL + its step


def _roles(step: int, block: int, head: int) -> HeadRoles:
    """A head's scores at step, each a different number (exact in float32)."""
    base = step + block / 2 + head / 4
    return HeadRoles(previous_token=base / 16, induction=base / 32, entropy=base / 8 + 1)


def _record(step: int, heads: list[list[HeadRoles]], context_gain: float | None) -> LearnedEvent:
    """One eval's record as the engine keeps it, with a wall time of its own."""
    return LearnedEvent(
        step=step,
        probe_loss=[None, 2.5],
        guess_ids=[1, 2],
        guess_probs=[0.5, 0.25],
        position_loss=[3.0, 2.0],
        context_gain=context_gain,
        heads=heads,
        embedding_map=MapPoints(ids=[1], x=[0.0], y=[1.0]),
        time=WALL + step,
    )


def _run(folder: Path, records: list[LearnedEvent]) -> Path:
    """A run directory written by hand: an eval per record in metrics.jsonl (the export
    needs a history), and the records in learned/."""
    run = RunDir(folder)
    run.create()
    for step in EVALS:
        run.append(EvalEvent(step=step, train_loss=2.0, val_loss=2.1, best_val_loss=2.1))
    run.close()
    for record in records:
        LearnedRecords(folder).write(record)
    return folder


def _export(run_dir: Path, out: Path) -> Any:
    """Export run_dir with the CLI and read the event file back with EventAccumulator."""
    # tensorboard ships no type information
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # type: ignore[import-untyped]

    assert main(["export", "--run-dir", str(run_dir), "--tensorboard", str(out)]) == 0
    reader = EventAccumulator(str(out), size_guidance={"scalars": 0})
    reader.Reload()
    return reader


def _points(reader: Any, tag: str) -> list[tuple[int, float, float]]:
    """(step, value, wall time) of each point of tag."""
    return [(p.step, p.value, p.wall_time) for p in reader.Scalars(tag)]


def _assert_points(reader: Any, tag: str, expected: list[tuple[int, float, float]]) -> None:
    """The tag's points are exactly these (step, value, wall time), in order."""
    points = _points(reader, tag)
    assert [p[0] for p in points] == [e[0] for e in expected], tag
    for (_, value, time), (_, want, want_time) in zip(points, expected, strict=True):
        assert math.isclose(value, want, rel_tol=1e-6), (tag, value, want)
        assert math.isclose(time, want_time, abs_tol=1e-3), (tag, time, want_time)


def test_each_record_gives_one_point_of_context_gain_and_of_each_head_score(
    tmp_path: Path,
) -> None:
    """Three records: the context gain and each head's previous-token, induction and
    entropy scores have exactly one point per record, its value, at its step and wall time."""
    gains = {step: 0.125 * (step + 1) for step in EVALS}
    heads = {
        step: [[_roles(step, b, h) for h in range(HEADS)] for b in range(BLOCKS)] for step in EVALS
    }
    records = [_record(step, heads[step], gains[step]) for step in EVALS]
    reader = _export(_run(tmp_path / "run", records), tmp_path / "tb")
    _assert_points(reader, CONTEXT_GAIN, [(s, gains[s], WALL + s) for s in EVALS])
    for tag, name in HEAD_SCALARS.items():
        for block in range(BLOCKS):
            for head in range(HEADS):
                expected = [(s, getattr(heads[s][block][head], name), WALL + s) for s in EVALS]
                _assert_points(reader, head_tag(tag, block, head), expected)
    learned = [t for t in reader.Tags()["scalars"] if t.startswith("learned/")]
    assert len(learned) == 1 + len(HEAD_SCALARS) * BLOCKS * HEADS


def test_a_score_not_measured_gives_no_point(tmp_path: Path) -> None:
    """A record without a context gain, or a head without an induction score, gives no
    point for it; the record's other scores still give theirs."""
    full = HeadRoles(previous_token=0.5, induction=0.25, entropy=1.5)
    partial = HeadRoles(previous_token=0.75, induction=None, entropy=2.0)
    records = [_record(0, [[partial]], context_gain=None), _record(5, [[full]], 0.5)]
    reader = _export(_run(tmp_path / "run", records), tmp_path / "tb")
    assert [p[0] for p in _points(reader, CONTEXT_GAIN)] == [5]
    assert [p[0] for p in _points(reader, head_tag("learned/induction", 0, 0))] == [5]
    assert [p[:2] for p in _points(reader, head_tag("learned/entropy", 0, 0))] == [
        (0, 2.0),
        (5, 1.5),
    ]


def test_a_run_without_records_exports_no_learned_tags(tmp_path: Path) -> None:
    """No learned/ folder: the history exports as before, and no tag is a learned one."""
    run_dir = _run(tmp_path / "run", [])
    assert not (run_dir / "learned").exists()
    reader = _export(run_dir, tmp_path / "tb")
    tags = reader.Tags()["scalars"]
    assert "eval/val_loss" in tags
    assert [p[0] for p in _points(reader, "eval/val_loss")] == EVALS
    assert not [t for t in tags if t.startswith("learned")]

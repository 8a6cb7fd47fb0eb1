"""minigpt export --tensorboard: TensorBoard's own reader gets back every point of the history."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from minigpt.cli.main import main
from minigpt.events import (
    AlertEvent,
    ConfigAppliedEvent,
    EvalEvent,
    StepEvent,
)
from minigpt.export.tensorboard import BLOCK_SCALARS, EVAL_SCALARS, STEP_SCALARS
from minigpt.rundir.layout import RunDir
from tests.minigpt.export.exports import train_run, write_corpus
from tests.minigpt.rundir.unusable import BAD_METRICS, BAD_SAMPLES
from tests.warm import ForkServer

RUN: dict[str, object] = {
    "model.num_blocks": 2,
    "train.max_iters": 12,
    "train.eval_interval": 5,
    "train.checkpoint_interval": 6,
    "sample.at_eval": True,
    "sample.max_new_tokens": 8,
    "sample.prompt": "the cat\n",  # the char vocabulary has no "T"
}


@pytest.fixture(scope="module")
def board(
    tmp_path_factory: pytest.TempPathFactory, fork_server: ForkServer
) -> tuple[RunDir, object]:
    """A run of 12 steps (evals at 0, 5, 10 and 12, a sample at each) with an alert, a
    config change and a line of each unusable kind (which no point comes from) added to its
    history, exported and read back by EventAccumulator."""
    # tensorboard ships no type information
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # type: ignore[import-untyped]

    root = tmp_path_factory.mktemp("export-tb")
    run = RunDir(train_run(root / "run", write_corpus(root), fork_server, **RUN))
    run.append(AlertEvent(kind="grad_spike", step=7, message="the gradient norm jumped *10x*"))
    run.append(ConfigAppliedEvent(step=9, changes={"train.learning_rate": [0.001, 0.0005]}))
    run.close()
    for path, odd in ((run.metrics, BAD_METRICS), (run.samples, BAD_SAMPLES)):
        with open(path, "ab") as f:
            f.write(b"".join(text + b"\n" for text in odd))
    out = root / "tb"
    assert main(["export", "--run-dir", str(run.path), "--tensorboard", str(out)]) == 0
    reader = EventAccumulator(str(out), size_guidance={"scalars": 0, "tensors": 0})
    reader.Reload()
    return run, reader


def _events(run: RunDir, kind: type) -> list:
    """The run's metrics.jsonl events of one kind."""
    return [e for e in run.read_metrics() if isinstance(e, kind)]


def _assert_points(reader: object, tag: str, expected: list[tuple[object, float]]) -> None:
    """The tag's points are exactly these (step, value) pairs, in order (float32 values)."""
    points = [(p.step, p.value) for p in reader.Scalars(tag)]  # type: ignore[attr-defined]
    assert [step for step, _ in points] == [step for step, _ in expected], tag
    for (_, got), (_, want) in zip(points, expected, strict=True):
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-30), tag


def test_every_step_gives_one_point_of_each_step_scalar(board: tuple[RunDir, object]) -> None:
    """Loss, learning rate and gradient norm: one point per step of metrics.jsonl, its
    value, at its wall time."""
    run, reader = board
    steps = _events(run, StepEvent)
    assert [e.step for e in steps] == list(range(1, 13))
    for tag, name in STEP_SCALARS.items():
        _assert_points(reader, tag, [(e.step, getattr(e, name)) for e in steps])
    times = [p.wall_time for p in reader.Scalars("train/loss")]  # type: ignore[attr-defined]
    assert times == pytest.approx([e.time for e in steps])


def test_every_eval_gives_its_losses_bits_per_byte_and_block_health(
    board: tuple[RunDir, object],
) -> None:
    """Each eval's losses and bits per byte, and each block's update ratio and weight norm
    where the eval has one (the first eval has no update yet)."""
    run, reader = board
    evals = _events(run, EvalEvent)
    assert [e.step for e in evals] == [0, 5, 10, 12]
    for tag, name in EVAL_SCALARS.items():
        _assert_points(reader, tag, [(e.step, getattr(e, name)) for e in evals])
    for tag, name in BLOCK_SCALARS.items():
        for block in range(2):
            expected = [(e.step, values[block]) for e in evals if (values := getattr(e, name))]
            assert len(expected) >= 3, (tag, block)
            _assert_points(reader, f"{tag}/block_{block}", expected)


def _texts(reader: object, tag: str) -> list[tuple[int, str]]:
    """(step, text) of each text summary under tag."""
    events = reader.Tensors(f"{tag}/text_summary")  # type: ignore[attr-defined]
    return [(e.step, e.tensor_proto.string_val[0].decode()) for e in events]


def test_alerts_config_changes_and_samples_are_text_at_their_steps(
    board: tuple[RunDir, object],
) -> None:
    """The alert and the config change at their steps; every completion of samples.jsonl
    at its step, prompt and completion intact in a code block."""
    run, reader = board
    assert _texts(reader, "alerts") == [(7, "**grad_spike**: the gradient norm jumped *10x*")]
    assert _texts(reader, "config_changes") == [(9, "`train.learning_rate`: 0.001 → 0.0005")]
    samples = list(run.read_samples())
    assert [e.step for e in samples] == [0, 5, 10, 12]
    texts = _texts(reader, "samples")
    assert [step for step, _ in texts] == [0, 5, 10, 12]
    for sample, (_, text) in zip(samples, texts, strict=True):
        header, body = text.split("\n\n", 1)
        assert header.startswith("at an eval: temperature 1.0, top_k 0, top_p 1.0, seed ")
        lines = (sample.prompt + sample.text).split("\n")
        assert body == "\n".join("    " + line for line in lines)


def test_no_history_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A folder without metrics.jsonl has nothing to export: exit 2, one line, no folder."""
    (tmp_path / "run").mkdir()
    out = tmp_path / "tb"
    assert main(["export", "--run-dir", str(tmp_path / "run"), "--tensorboard", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "has no history to export" in error
    assert not out.exists()

"""A run measures the learned views at every eval, keeps one record per eval in learned/,
drops the records of lost steps on resume, and does without them when switched off."""

import json
from pathlib import Path

import pytest

from minigpt.events import EvalEvent, LearnedEvent
from minigpt.rundir.learned import LearnedRecords
from minigpt.service.run import Run
from tests.minigpt.runs import train_to_end

pytestmark = pytest.mark.trains


ON = {"train.learned_views": True}


def test_every_eval_keeps_a_record_and_says_it(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """Each eval is followed by a learned event, kept as learned/step-N.json, which reads
    back as the same event; probe.json names the probe's tokens and the vocabulary."""
    events = train_to_end(Run.start(tiny_config(corpus_file, **ON), tmp_path / "run"))
    evals = [e.step for e in events if isinstance(e, EvalEvent)]
    learned = [e for e in events if isinstance(e, LearnedEvent)]
    assert [e.step for e in learned] == evals == [0, 20, 40]
    records = LearnedRecords(tmp_path / "run")
    assert records.steps() == evals
    for event in learned:
        assert event.step is not None
        kept = records.record(event.step)
        assert kept is not None
        assert kept.to_dict() | {"time": 0} == event.to_dict() | {"time": 0}
    probe = records.probe()
    assert probe is not None
    assert len(probe["ids"]) == len(probe["text"]) == len(learned[-1].probe_loss) > 100
    assert len(learned[-1].guess_ids) == LearnedEvent.GUESSES * len(probe["ids"])
    assert all(0 <= i < len(probe["vocab"]) for i in learned[-1].guess_ids if i is not None)
    context = tiny_config(corpus_file, **ON).model.context_length
    assert len(learned[-1].position_loss) == context


def test_the_position_curve_is_the_val_loss_spread_over_positions(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """The mean of the val loss by position is the eval's val loss."""
    events = train_to_end(Run.start(tiny_config(corpus_file, **ON), tmp_path / "run"))
    last_eval = [e for e in events if isinstance(e, EvalEvent)][-1]
    last_learned = [e for e in events if isinstance(e, LearnedEvent)][-1]
    curve = [loss for loss in last_learned.position_loss if loss is not None]
    assert last_eval.val_loss == pytest.approx(sum(curve) / len(curve), abs=1e-3)


def test_resume_drops_the_records_of_lost_steps_and_keeps_the_probe(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """Records after the checkpoint's step go on resume; the probe stays the same."""
    run_dir = tmp_path / "run"
    train_to_end(Run.start(tiny_config(corpus_file, **ON, **{"train.max_iters": 20}), run_dir))
    records = LearnedRecords(run_dir)
    (records.path / "step-000000030.json").write_text(
        (records.path / "step-000000020.json").read_text()
    )
    probe = records.probe()
    run = Run.resume(tiny_config(corpus_file, **ON, **{"train.max_iters": 40}), run_dir)
    assert records.steps() == [0, 20]
    train_to_end(run)
    assert records.steps() == [0, 20, 40]
    assert records.probe() == probe


def test_switched_off_nothing_is_measured(corpus_file: Path, tmp_path: Path, tiny_config) -> None:
    """train.learned_views = false: no learned events and no learned/ folder."""
    config = tiny_config(corpus_file, **{"train.learned_views": False})
    events = train_to_end(Run.start(config, tmp_path / "run"))
    assert not [e for e in events if isinstance(e, LearnedEvent)]
    assert not (tmp_path / "run" / "learned").exists()


def test_odd_files_in_the_folder_are_passed_over(tmp_path: Path) -> None:
    """Files named otherwise, records that are no JSON object and NaN values do no harm."""
    records = LearnedRecords(tmp_path)
    records.path.mkdir()
    (records.path / "notes.txt").write_text("hello")
    (records.path / "step-000000010.json").write_text("[1, 2")
    (records.path / "step-000000020.json").write_text(
        json.dumps({"probe_loss": [1.5, "x", None], "context_gain": "much"}).replace("1.5", "NaN")
    )
    assert records.steps() == [10, 20]
    assert records.record(10) is None
    odd = records.record(20)
    assert odd is not None
    assert odd.step == 20
    assert odd.probe_loss == [None, None, None]
    assert odd.context_gain is None
    assert records.probe() is None
    assert records.at_or_before(15) is None

"""The model card's last eval comes from the run's index: exporting never reads metrics.jsonl
whole, and a checkpoint outside any run directory gets no index made beside it."""

from pathlib import Path

import pytest

from minigpt.events import EvalEvent, StepEvent
from minigpt.export.model_card import last_eval
from minigpt.rundir import journal
from minigpt.rundir.layout import RunDir


def test_the_last_eval_at_or_before_the_checkpoint_comes_from_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The latest eval of a step at or before the checkpoint's, in file order: later evals
    (the run went on after the save) and unusable lines are passed over."""
    run_dir = RunDir(tmp_path / "run")
    run_dir.create()
    for step in (0, 10, 20):
        run_dir.append(StepEvent(step, 3.0, 1e-3, 1e5, 2.0, step / 100))
        run_dir.append(EvalEvent(step, 3.0, 3.0 - step / 100, 3.0 - step / 100))
    with open(run_dir.metrics, "ab") as f:
        f.write(b'{"event": "eval", "step": 12.5, "val_loss": 1.0}\n')
    run_dir.close()
    monkeypatch.setattr(journal, "_lines", None)  # reading the file whole would fail
    at_15 = last_eval(run_dir, 15)
    assert at_15 is not None and (at_15.step, at_15.val_loss) == (10, 2.9)
    found = {step: getattr(last_eval(run_dir, step), "step", None) for step in (-1, 0, 20, 99)}
    assert found == {-1: None, 0: 0, 20: 20, 99: 20}
    assert run_dir.index.is_file()


def test_a_checkpoint_outside_a_run_directory_gets_no_index(tmp_path: Path) -> None:
    """No metrics.jsonl beside the checkpoint: no eval, and no history.sqlite made there."""
    assert last_eval(RunDir(tmp_path), 100) is None
    assert list(tmp_path.iterdir()) == []

"""Training health: gradient norms, bits per byte, update ratios and alerts."""

import math
import random
from pathlib import Path

import pytest

from minigpt.alerts import Alerts
from minigpt.errors import DivergedError
from minigpt.events import AlertEvent, EvalEvent, Event, StepEvent, decode
from minigpt.history import History
from minigpt.run import Run


def _train(run: Run) -> list[Event]:
    """Advance a run to its end or to a diverged loss, returning every event."""
    events: list[Event] = []
    try:
        while not run.done:
            events.extend(run.advance())
    except DivergedError:
        events.append(StepEvent(run.trainer.step + 1, math.nan, None, None, None, None))
    finally:
        run.close()
    return events


def _of(kind: type, events: list[Event]) -> list:
    """The events of one class."""
    return [e for e in events if isinstance(e, kind)]


@pytest.fixture
def small_text(tmp_path: Path) -> Path:
    """About 2 KB of random words: too little text for a model not to memorise it."""
    rng = random.Random(0)
    words = "the quick brown fox jumps over lazy dog and cat sat on mat while birds sing"
    path = tmp_path / "small.txt"
    path.write_text(" ".join(rng.choice(words.split()) for _ in range(400))[:2000], "utf-8")
    return path


def test_steps_carry_the_gradient_norm_and_whether_it_was_clipped(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """Every step reports a positive gradient norm, clipped exactly when over grad_clip."""
    config = tiny_config(corpus_file, **{"train.grad_clip": 1.5})
    steps = _of(StepEvent, _train(Run.start(config, tmp_path / "run")))
    assert len(steps) == 40
    assert all(s.grad_norm > 0 and s.clipped == (s.grad_norm > 1.5) for s in steps)
    assert {s.clipped for s in steps} == {True, False}  # the threshold splits this run


def test_without_clipping_no_norm_is_computed(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """grad_clip = 0 reports no norm rather than paying for one."""
    config = tiny_config(corpus_file, **{"train.grad_clip": 0.0, "train.max_iters": 3})
    steps = _of(StepEvent, _train(Run.start(config, tmp_path / "run")))
    assert [(s.grad_norm, s.clipped) for s in steps] == [(None, None)] * 3


def test_evals_report_bits_per_byte_tokens_and_block_health(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """On ASCII text with the char tokenizer bpb is loss / ln 2; tokens_seen, epochs,
    update ratios and weight norms match the run."""
    run = Run.start(tiny_config(corpus_file), tmp_path / "run")
    train_tokens, per_step = len(run.trainer.corpus.train), run.trainer.tokens_per_step
    evals = _of(EvalEvent, _train(run))
    assert [e.step for e in evals] == [0, 20, 40]
    for e in evals:
        assert e.val_bpb == pytest.approx(e.val_loss / math.log(2), rel=0.01)
        assert e.train_bpb == pytest.approx(e.train_loss / math.log(2), rel=0.01)
        assert e.tokens_seen == e.step * per_step
        assert e.epochs == pytest.approx(e.tokens_seen / train_tokens)
        assert len(e.weight_norm) == 2 and all(n > 0 for n in e.weight_norm)
    assert evals[0].update_ratio == []  # no update before the first step
    for e in evals[1:]:
        assert len(e.update_ratio) == 2
        assert all(math.isfinite(r) and 0 < r < 1 for r in e.update_ratio)


def test_bits_per_byte_counts_bytes_not_characters(
    mixed_corpus: Path, tmp_path: Path, tiny_config
) -> None:
    """Multi-byte characters make a char token more than a byte: bpb falls below loss / ln 2."""
    evals = _of(EvalEvent, _train(Run.start(tiny_config(mixed_corpus), tmp_path / "run")))
    ratio = evals[-1].train_bpb / (evals[-1].train_loss / math.log(2))
    assert 0.8 < ratio < 0.99


def test_tokens_seen_carries_across_a_resume(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """A resumed run counts on from the tokens its checkpoint had seen."""
    first = tiny_config(corpus_file, **{"train.max_iters": 20})
    _train(Run.start(first, tmp_path / "run"))
    resumed = Run.resume(tiny_config(corpus_file, **{"train.max_iters": 40}), tmp_path / "run")
    per_step = resumed.trainer.tokens_per_step
    (last,) = _of(EvalEvent, _train(resumed))
    assert last.tokens_seen == 40 * per_step


@pytest.mark.parametrize(
    "rates",
    [
        {"train.optimizer": "adamw", "train.learning_rate": 10.0},
        {"train.optimizer": "muon", "train.learning_rate": 10.0, "train.muon_learning_rate": 10.0},
    ],
)
def test_a_huge_learning_rate_raises_too_high_lr_before_the_loss_fails(
    rates: dict, corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """Learning rate 10 clips most steps while the loss climbs: the alert comes first."""
    config = tiny_config(corpus_file, **rates, **{"train.max_iters": 60})
    events = _train(Run.start(config, tmp_path / "run"))
    alert = next(a for a in _of(AlertEvent, events) if a.kind == "too_high_lr")
    failed = [s.step for s in _of(StepEvent, events) if not math.isfinite(s.loss)]
    assert alert.step < min(failed, default=math.inf)
    assert "learning rate" in alert.message


def test_a_healthy_run_raises_no_alert(corpus_file: Path, tmp_path: Path, tiny_config) -> None:
    """The tiny config learns well (though it clips every step): it must stay quiet."""
    events = _train(Run.start(tiny_config(corpus_file), tmp_path / "run"))
    assert _of(AlertEvent, events) == []
    assert all(s.clipped for s in _of(StepEvent, events))  # clipping alone is no alarm


def test_overfitting_is_raised_once_and_survives_metrics_and_history(
    small_text: Path, tmp_path: Path, tiny_config
) -> None:
    """Long training on ~2 KB raises overfitting once; the alert is in metrics.jsonl, and
    History reads it back without skipping a line. (AdamW, evaluated on its own weights,
    memorises these 2 KB within 400 steps; Muon at its default rate does not, and the
    weight average's val loss rises later, so with either there is nothing to raise.)"""
    values = {
        "train.optimizer": "adamw",
        "train.ema_decay": 0,
        "train.max_iters": 400,
        "train.eval_interval": 25,
        "train.checkpoint_interval": 400,
        "train.min_lr": 3e-3,
        "model.dropout": 0.0,
        "model.d_model": 64,
    }
    run = Run.start(tiny_config(small_text, **values), tmp_path / "run")
    alerts = _of(AlertEvent, _train(run))
    assert [a.kind for a in alerts] == ["overfitting"]
    assert "dropout" in alerts[0].message
    history = History.read(run.run_dir)
    assert history.skipped == 0
    assert [(a.kind, a.step, a.message) for a in history.alerts] == [
        (a.kind, a.step, a.message) for a in alerts
    ]


def test_each_alert_fires_once_until_its_condition_clears() -> None:
    """A run of spikes is one grad_spike alert; a calm step re-arms it."""
    alerts = Alerts(vocab_size=65)
    raised = []
    for step, norm in enumerate([1.0] * 20 + [50.0] * 3 + [1.0] + [50.0], start=1):
        raised += alerts.feed(StepEvent(step, 3.0, 1e-3, None, None, None, norm, True))
    assert [(a.kind, a.step) for a in raised] == [("grad_spike", 21), ("grad_spike", 25)]


def test_init_loss_far_from_uniform_guessing_is_raised() -> None:
    """A step-0 loss over 25% away from ln(vocab) raises init_loss; a near one does not."""
    near = Alerts(vocab_size=65).feed(EvalEvent(0, math.log(65) * 1.1, 4.5, 4.5))
    far = Alerts(vocab_size=65).feed(EvalEvent(0, math.log(65) * 2, 8.4, 8.4))
    assert near == []
    assert [a.kind for a in far] == ["init_loss"]
    assert "ln(65)" in far[0].message


def test_alerts_decode_from_older_and_newer_lines() -> None:
    """An alert round-trips through JSON; an eval line without health fields still decodes."""
    alert = AlertEvent(kind="overfitting", step=300, message="val loss rose")
    assert decode(alert.to_dict()) == alert
    old = decode({"event": "eval", "step": 5, "train_loss": 2.0, "val_loss": 2.1})
    assert isinstance(old, EvalEvent) and old.val_bpb is None and old.update_ratio is None


def test_a_resumed_run_remembers_which_alerts_are_raised(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """Resuming replays the history into the alerts: what was raised stays raised (and is
    not announced again), and the recent windows are the run's own."""
    values = {"train.optimizer": "adamw", "train.learning_rate": 10.0, "train.max_iters": 60}
    values["train.checkpoint_interval"] = 60
    run = Run.start(tiny_config(corpus_file, **values), tmp_path / "run")
    _train(run)
    assert run.alerts.active  # the huge rate raised something by step 60
    resumed = Run.resume(None, tmp_path / "run")
    try:
        assert resumed.alerts.active == run.alerts.active
        assert list(resumed.alerts.recent) == list(run.alerts.recent)
    finally:
        resumed.close()

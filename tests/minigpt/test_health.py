"""Training health: gradient norms, bits per byte, update ratios and alerts."""

import math
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from minigpt.alerts import Alerts, rate_advice, rates_to_lower
from minigpt.config import Config, apply_values
from minigpt.errors import DivergedError
from minigpt.events import AlertEvent, EvalEvent, Event, StepEvent, decode
from minigpt.rundir.history import History
from minigpt.service.run import Run

pytestmark = pytest.mark.trains


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
    training time, update ratios and weight norms match the run."""
    run = Run.start(tiny_config(corpus_file), tmp_path / "run")
    train_tokens, per_step = len(run.trainer.corpus.train), run.trainer.tokens_per_step
    events = _train(run)
    evals = _of(EvalEvent, events)
    assert [e.step for e in evals] == [0, 20, 40]
    seconds = {0: 0.0} | {s.step: s.elapsed for s in _of(StepEvent, events)}
    assert [e.elapsed for e in evals] == [seconds[e.step] for e in evals]
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


HUGE_RATES = [  # each far past what trains: the loss explodes, or the blocks' weights do
    ({"train.optimizer": "adamw", "train.learning_rate": 10.0}, "train.learning_rate"),
    ({"train.learning_rate": 10.0}, "train.learning_rate"),  # Muon's AdamW part
    ({"train.muon_learning_rate": 10.0}, "train.muon_learning_rate"),
]


@pytest.mark.parametrize(("rates", "named"), HUGE_RATES)
def test_a_huge_learning_rate_is_alerted_by_the_second_eval_naming_it(
    rates: dict, named: str, corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """Learning rate 10, warmup 0: an alert by step 40 (the second eval) that names the
    rate at fault. The margins are wide for any arithmetic: with AdamW's rate the loss
    goes to hundreds (the alert needs twice ln(vocab), ~6.6); with Muon's the blocks'
    weights grow hundreds of times past the size that keeps a layer's scale (it needs 10)."""
    values = {"train.warmup_iters": 0, "train.eval_interval": 20, "train.max_iters": 40}
    events = _train(Run.start(tiny_config(corpus_file, **rates, **values), tmp_path / "run"))
    alerts = [a for a in _of(AlertEvent, events) if a.step <= 40]
    assert alerts, "no alert by the second eval"
    assert f"lower {named} (" in alerts[0].message


def test_a_healthy_run_raises_no_alert(corpus_file: Path, tmp_path: Path, tiny_config) -> None:
    """The tiny config learns well (though it clips every step): it must stay quiet."""
    events = _train(Run.start(tiny_config(corpus_file), tmp_path / "run"))
    assert _of(AlertEvent, events) == []
    assert all(s.clipped for s in _of(StepEvent, events))  # clipping alone is no alarm


def test_an_alert_is_recorded_once_and_read_back_by_history(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """A diverging run's alert is in metrics.jsonl after its step, once however long the
    loss stays high, and History reads it back without skipping a line."""
    values = {"train.optimizer": "adamw", "train.learning_rate": 10.0, "train.warmup_iters": 0}
    run = Run.start(tiny_config(corpus_file, **values), tmp_path / "run")
    alerts = _of(AlertEvent, _train(run))
    assert [a.kind for a in alerts].count("diverged") == 1
    history = History.read(run.run_dir)
    assert history.skipped == 0
    assert [(a.kind, a.step, a.message) for a in history.alerts] == [
        (a.kind, a.step, a.message) for a in alerts
    ]


def _step(step: int, loss: float | None, norm: float | None = 1.0) -> StepEvent:
    """A scripted step event."""
    return StepEvent(step, loss, 1e-3, None, None, None, norm, True)


def _feed(alerts: Alerts, events: Sequence[Event]) -> list[tuple[str, int | None]]:
    """(kind, step) of every alert the events raise."""
    return [(a.kind, a.step) for event in events for a in alerts.feed(event)]


def test_a_loss_far_above_a_uniform_guess_or_not_finite_is_divergence() -> None:
    """Over twice ln(vocab) or NaN: diverged at once, naming the rate; it clears only once
    the loss is back under ln(vocab), and then fires again."""
    alerts = Alerts(vocab_size=65)  # ln 65 = 4.17
    losses = [4.2, 9.0, 30.0, 6.0, 8.5, 4.0, math.nan, math.inf]
    raised = _feed(alerts, [_step(n, loss) for n, loss in enumerate(losses, start=1)])
    assert raised == [("diverged", 2), ("diverged", 7)]
    alert = Alerts(vocab_size=65).feed(_step(3, 40.0))[0]
    assert "ln(65)" in alert.message and "train.learning_rate" in alert.message
    assert Alerts(vocab_size=65).feed(_step(3, 8.3)) == []  # under twice ln(vocab)


def test_a_climbing_loss_raises_too_high_lr_whatever_its_shape() -> None:
    """The mean of 20 steps a tenth above its lowest raises too_high_lr, after a fall of
    any length and with noise; a noisy plateau, or a tiny loss wobbling, does not."""
    rng = random.Random(0)
    for fall in (20, 57, 300):
        alerts = Alerts(vocab_size=65)
        down = [4.0 - 2.0 * n / fall for n in range(fall)]
        up = [2.0 + 0.05 * n for n in range(40)]
        losses = [loss * rng.uniform(0.9, 1.1) for loss in down + up]
        raised = _feed(alerts, [_step(n, x) for n, x in enumerate(losses, start=1)])
        assert [kind for kind, _ in raised] == ["too_high_lr"]
        at = raised[0][1]
        assert at is not None and fall < at <= fall + 40
    plateau = [2.0 * rng.uniform(0.9, 1.1) for _ in range(500)]
    tiny = [rng.choice([1e-4, 5e-3]) for _ in range(500)]
    for losses in (plateau, tiny):
        quiet = Alerts(vocab_size=65)
        assert _feed(quiet, [_step(n, x) for n, x in enumerate(losses, start=1)]) == []


def _eval(step: int, train: float, val: float, norm: float = 7.0) -> EvalEvent:
    """A scripted eval of a 4-block model whose blocks have this weight norm."""
    return EvalEvent(step, train, val, None, weight_norm=[norm] * 4)


def test_weights_far_too_large_are_raised_naming_the_rate_that_grew_them() -> None:
    """Blocks whose weights' RMS is over ten times 1/sqrt(d_model) raise weights_too_large:
    under Muon it names muon_learning_rate, under AdamW learning_rate; healthy sizes do not."""
    config = apply_values(Config(), {"train.muon_learning_rate": 10.0})  # d_model 128
    blocks = math.sqrt(12 * 128**2)  # a block's matrix weights: RMS = norm / this
    healthy = [_eval(n, 5.0, 5.0, norm=0.1 * blocks) for n in range(0, 2000, 100)]
    alerts = Alerts(vocab_size=65, config=lambda: config)
    assert _feed(alerts, healthy) == []  # RMS 0.1: 1.1x 1/sqrt(128)
    (alert,) = alerts.feed(_eval(2000, 5.0, 5.0, norm=2.0 * blocks))  # 23x
    assert alert.kind == "weights_too_large" and "lower train.muon_learning_rate" in alert.message
    adamw = apply_values(Config(), {"train.optimizer": "adamw", "train.learning_rate": 10.0})
    (alert,) = Alerts(65, lambda: adamw).feed(_eval(20, 5.0, 5.0, norm=2.0 * blocks))
    assert "lower train.learning_rate" in alert.message


def test_overfitting_is_a_val_loss_well_above_its_best_while_train_loss_falls() -> None:
    """Val 5% above its best while train falls on raises overfitting once (after
    memorising, raised as the val loss stopped improving), wherever the best was and
    however noisy the evals; a val loss that only wobbles, or rises with the train loss,
    does not; back near the best it clears and can fire again."""
    rng = random.Random(1)
    for best_at in (3, 10, 25):
        val = [3.0 - 0.05 * n for n in range(best_at)] + [
            3.0 - 0.05 * best_at + 0.02 * n for n in range(20)
        ]
        train = [2.9 - 0.06 * n for n in range(len(val))]
        noisy = [v * rng.uniform(0.99, 1.01) for v in val]
        alerts = Alerts(vocab_size=65)
        evals = [_eval(n, t, v) for n, (t, v) in enumerate(zip(train, noisy, strict=True), 1)]
        found = [alert for event in evals for alert in alerts.feed(event)]
        assert [a.kind for a in found] == ["memorising", "overfitting"]
        assert "dropout" in found[1].message
    wobble = [_eval(n, 2.0 - 0.01 * n, 2.0 * rng.uniform(0.98, 1.02)) for n in range(1, 100)]
    both_rise = [_eval(n, 2.0 + 0.05 * n, 2.1 + 0.05 * n) for n in range(1, 30)]
    for evals in (wobble, both_rise):
        assert _feed(Alerts(vocab_size=65), evals) == []
    again = Alerts(vocab_size=65)
    losses = [(2.0, 2.0), (1.9, 2.2), (1.8, 2.01), (1.7, 2.3)]
    raised = _feed(again, [_eval(n, t, v) for n, (t, v) in enumerate(losses, 1)])
    assert raised == [("overfitting", 2), ("overfitting", 4), ("memorising", 4)]


def test_each_alert_fires_once_until_its_condition_clears() -> None:
    """A run of spikes is one grad_spike alert; a calm step re-arms it."""
    alerts = Alerts(vocab_size=65)
    raised = []
    for step, norm in enumerate([1.0] * 20 + [50.0] * 3 + [1.0] + [50.0], start=1):
        raised += alerts.feed(StepEvent(step, 3.0, 1e-3, None, None, None, norm, True))
    assert [(a.kind, a.step) for a in raised] == [("grad_spike", 21), ("grad_spike", 25)]


@pytest.mark.parametrize(
    ("values", "lower"),
    [
        ({"train.optimizer": "adamw", "train.learning_rate": 1.0}, ["train.learning_rate"]),
        ({"train.muon_learning_rate": 10.0}, ["train.muon_learning_rate"]),
        ({"train.learning_rate": 0.1, "train.muon_learning_rate": 0.03}, ["train.learning_rate"]),
        ({}, ["train.learning_rate", "train.muon_learning_rate"]),
    ],
)
def test_advice_names_the_rates_in_force_and_the_one_to_lower(values: dict, lower: list) -> None:
    """The rates in force are named with their values; the one furthest above its default
    is the one to lower (all of them, with warmup, when none is above its default)."""
    train = apply_values(Config(), values).train
    advice = rate_advice(train)
    assert f"train.learning_rate = {train.learning_rate:.3g}" in advice
    assert ("muon_learning_rate =" in advice) == (train.optimizer == "muon")
    assert rates_to_lower(train) == lower
    assert f"lower {' and '.join(lower)}" in advice
    grad_spike = Alerts(65, lambda: apply_values(Config(), values))
    norms = [_step(n, 3.0, norm=1.0) for n in range(1, 20)] + [_step(20, 3.0, norm=100.0)]
    (alert,) = [a for event in norms for a in grad_spike.feed(event)]
    assert f"lower {lower[0]}" in alert.message


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
    values |= {"train.checkpoint_interval": 60, "train.warmup_iters": 0}
    run = Run.start(tiny_config(corpus_file, **values), tmp_path / "run")
    _train(run)
    assert "diverged" in run.alerts.active  # the loss is hundreds of times ln(vocab)
    resumed = Run.resume(None, tmp_path / "run")
    try:
        assert resumed.alerts.active == run.alerts.active
        assert list(resumed.alerts.losses) == list(run.alerts.losses)
        assert list(resumed.alerts.norms) == list(run.alerts.norms)
        assert resumed.alerts.best == run.alerts.best
    finally:
        resumed.close()

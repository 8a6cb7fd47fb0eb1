"""The memorising alert: the train loss falls on while the best val loss stands still."""

import json
import random
import string
from collections.abc import Sequence
from pathlib import Path

import pytest

from minigpt.alerts import Alerts
from minigpt.events import AlertEvent, EvalEvent, Event
from minigpt.service.run import Run


def _evals(
    losses: Sequence[tuple[float, float]], epochs: float | None = 5.0, every: int = 100
) -> list[EvalEvent]:
    """Scripted evals every `every` steps from step `every`: (train, val) each, at `epochs`."""
    return [
        EvalEvent((n + 1) * every, train, val, None, epochs=epochs)
        for n, (train, val) in enumerate(losses)
    ]


def _raised(alerts: Alerts, events: Sequence[Event]) -> list[AlertEvent]:
    """Every alert the events raise, in order."""
    return [alert for event in events for alert in alerts.feed(event)]


def _stall(stall_at: int, rng: random.Random, after: int = 10) -> list[tuple[float, float]]:
    """Both losses fall for `stall_at` evals (val 70% as fast as train), then the val loss
    stands within 0.5% of where it stopped while the train loss falls on 0.08 an eval,
    as the default run's does from step 900 (both with 0.5% noise)."""
    fall = [(6 - 2 * n / stall_at, 6.2 - 1.4 * n / stall_at) for n in range(stall_at + 1)]
    flat = [(4 - 0.08 * n, 4.8) for n in range(1, after + 1)]
    return [(t * rng.uniform(0.995, 1.005), v * rng.uniform(0.995, 1.005)) for t, v in fall + flat]


def test_a_val_loss_standing_still_while_the_train_loss_falls_is_memorising() -> None:
    """Val within 1% of its best while train falls on raises memorising once, three evals
    within five evals of the stall wherever it comes, naming the epochs read and what helps; never
    overfitting, which waits for the val loss to climb 5%."""
    rng = random.Random(0)
    for stall_at in (4, 9, 30):
        events = _evals(_stall(stall_at, rng), epochs=12.3)
        found = _raised(Alerts(vocab_size=6337), events)
        assert [a.kind for a in found] == ["memorising"]
        stalled, at = events[stall_at].step, found[0].step
        assert stalled is not None and at is not None and stalled < at <= stalled + 500
        message = found[0].message
        assert "read 12.3 times over" in message
        assert all(help in message for help in ("more text", "dropout", "smaller model"))


def test_a_run_whose_val_loss_keeps_improving_raises_nothing() -> None:
    """Val falling with train (alike, or half as fast), a plateau where both wobble by 1%,
    or a slow fall under a 2% wobble: no memorising, however many epochs are read."""
    rng = random.Random(1)
    alike = [(5 - 0.15 * n, 5.2 - 0.15 * n) for n in range(20)]
    half = [(5 - 0.15 * n, 5.2 - 0.075 * n) for n in range(20)]
    plateau = [(2.0 * rng.uniform(0.99, 1.01), 2.05 * rng.uniform(0.99, 1.01)) for _ in range(200)]
    wobble = [(2.0 - 0.01 * n, 2.0 * rng.uniform(0.98, 1.02)) for n in range(100)]
    for losses in (alike, half, plateau, wobble):
        noisy = [(t * rng.uniform(0.995, 1.005), v * rng.uniform(0.995, 1.005)) for t, v in losses]
        assert _raised(Alerts(vocab_size=65), _evals(noisy, epochs=16.0)) == []


def test_a_gap_that_opens_before_the_text_is_read_once_is_not_memorising() -> None:
    """Under one epoch every batch is new text, so a stalling val loss is no memorising;
    an engine that sends no epochs is judged on the losses alone."""
    losses = _stall(9, random.Random(2))
    assert _raised(Alerts(vocab_size=65), _evals(losses, epochs=0.8)) == []
    found = _raised(Alerts(vocab_size=65), _evals(losses, epochs=None))
    assert [a.kind for a in found] == ["memorising"]
    assert "times over" not in found[0].message


def test_memorising_fires_once_then_clears_when_the_val_loss_improves_again() -> None:
    """A long stall is one alert; once the best val loss falls at least half as far as the
    train loss over three evals it clears, and the next stall raises it again."""
    fall = [(5 - 0.2 * n, 5.2 - 0.2 * n) for n in range(5)]  # to (4.2, 4.4)
    stall = [(4.0 - 0.1 * n, 4.4) for n in range(8)]  # to (3.3, 4.4)
    recover = [(3.2 - 0.05 * n, 4.3 - 0.1 * n) for n in range(5)]  # to (3.0, 3.9)
    again = [(2.9 - 0.1 * n, 3.9) for n in range(8)]
    events = _evals(fall + stall + recover + again)
    found = [(a.kind, a.step) for a in _raised(Alerts(vocab_size=65), events)]
    assert found == [("memorising", 800), ("memorising", 2100)]


def test_the_memorising_window_survives_a_checkpoint() -> None:
    """Alerts rebuilt from a JSON copy of state_dict() part-way through a stall, or after
    the alert, raise what the uninterrupted alerts raise, and nothing twice."""
    events = _evals(_stall(9, random.Random(3)))
    whole = [(a.kind, a.step) for a in _raised(Alerts(vocab_size=65), events)]
    assert [kind for kind, _ in whole] == ["memorising"]
    for cut in (11, 15):
        first = Alerts(vocab_size=65)
        before = [(a.kind, a.step) for a in _raised(first, events[:cut])]
        resumed = Alerts(vocab_size=65)
        resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
        after = [(a.kind, a.step) for a in _raised(resumed, events[cut:])]
        assert before + after == whole


@pytest.mark.trains
def test_a_run_over_two_kb_of_random_letters_memorises_and_says_so(
    tmp_path: Path, tiny_config
) -> None:
    """2 KB of random letters hold nothing that carries over beyond how often each letter
    comes, so what a wide model learns past that is the train text itself: memorising is
    raised by step 120 (17 epochs read; it came at step 80, 11 epochs, where this was
    written), naming the epochs that eval read."""
    rng = random.Random(0)
    corpus = tmp_path / "letters.txt"
    text = "".join(rng.choice(string.ascii_lowercase) if n % 40 else "\n" for n in range(1, 2001))
    corpus.write_text(text, "utf-8")
    values: dict[str, object] = {"model.d_model": 128, "model.num_heads": 4}
    values |= {"model.num_blocks": 1, "model.dropout": 0.0, "train.batch_size": 16}
    values |= {"train.learning_rate": 1e-2, "train.min_lr": 1e-2, "train.max_iters": 120}
    values |= {"train.checkpoint_interval": 120}
    run = Run.start(tiny_config(corpus, **values), tmp_path / "run")
    events: list[Event] = []
    try:
        while not run.done:
            events.extend(run.advance())
    finally:
        run.close()
    memorising = [e for e in events if isinstance(e, AlertEvent) and e.kind == "memorising"]
    assert len(memorising) == 1
    (at,) = [e for e in events if isinstance(e, EvalEvent) and e.step == memorising[0].step]
    assert at.epochs is not None and at.epochs > 1
    assert f"read {at.epochs:.3g} times over" in memorising[0].message

"""The notice rules on made-up events and a fake clock: what calls for a notice, and when
a step has stalled."""

import math

import pytest

from minigpt.config import Config, apply_values
from minigpt.events import (
    AlertEvent,
    ConfigAppliedEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    NoticeEvent,
    StateEvent,
    StepEvent,
    decode,
)
from minigpt.service.notices import STALL_FLOOR_S, USUAL_AFTER, NoticeRules

# Steps of 30 s: three times that is over the floor, so stall_after decides.
STEP_S = 30.0
EVERY = {"train.eval_interval": 1000, "train.checkpoint_interval": 1000, "train.max_iters": 9000}


class Rules:
    """NoticeRules for a run named "run" under a config the test may change, on a fake clock."""

    def __init__(self, best_val_loss: float = math.inf, **values: object) -> None:
        """Rules on the defaults with EVERY and values on top, at time 0."""
        self.config = apply_values(Config(), EVERY | values)
        self.rules = NoticeRules("run", lambda: self.config, best_val_loss)
        self.now = 0.0

    def set(self, **values: object) -> None:
        """A hot change of the config in force."""
        self.config = apply_values(self.config, values)

    def see(self, *events: Event) -> list[NoticeEvent]:
        """The notices the events call for, seen at the clock's time."""
        return [n for e in events if (n := self.rules.see(e, self.now)) is not None]

    def steps(self, first: int, last: int, seconds: float = STEP_S) -> list[NoticeEvent]:
        """Steps first..last, each `seconds` after the one before (what they call for)."""
        said = []
        for step in range(first, last + 1):
            self.now += seconds
            said += self.see(StepEvent(step, 2.0, 1e-3, None, None, None))
        return said

    def stalled_after(self, seconds: float) -> NoticeEvent | None:
        """What the watchdog hears `seconds` after now."""
        self.now += seconds
        return self.rules.stalled(self.now)


def kinds(notices: list[NoticeEvent]) -> list[str]:
    """The kinds of some notices, in order."""
    return [n.kind for n in notices]


def evaluated(step: int, val: float | None) -> EvalEvent:
    """An eval at step whose val loss is val."""
    return EvalEvent(step=step, train_loss=1.0, val_loss=val, best_val_loss=val)


def test_ends_of_training_are_told_once_and_only_after_running() -> None:
    """Finishing and failing are told with the step and the error; an engine that starts
    on a finished run, or a pause by hand, says nothing."""
    rules = Rules()
    assert rules.see(StateEvent("finished", "started")) == []
    rules.see(StateEvent("running", "start"), evaluated(0, 3.0))
    rules.steps(1, 3)
    (finished,) = rules.see(evaluated(3, 2.5), StateEvent("finished", "max_iters reached"))
    assert finished.kind == "finished" and finished.title == "run: finished at step 3"
    assert finished.message == "3 steps trained; val loss 2.5000, best 2.5000"
    rules.see(StateEvent("running", "start"))
    assert rules.see(StateEvent("paused", "pause")) == []
    rules.see(StateEvent("running", "resume"))
    failed = rules.see(ErrorEvent("training failed: out of memory"), StateEvent("failed", "oom"))
    assert [(n.kind, n.message) for n in failed] == [("failed", "training failed: out of memory")]


def test_a_diverged_loss_is_one_notice_with_the_advice_whether_paused_or_stopped() -> None:
    """The pause for a diverged loss is told with the error's advice, not as an alert too;
    so is `minigpt train`'s failing for it; on_diverge off says nothing."""
    rules = Rules()
    for state, where in (("paused", "paused"), ("failed", "stopped")):
        rules.see(StateEvent("running", "start"))
        said = rules.see(
            ErrorEvent("loss became nan at step 7; lower train.learning_rate"),
            AlertEvent("diverged", 7, "the loss diverged to nan"),
            StateEvent(state, "loss diverged"),
        )
        assert [(n.kind, n.title) for n in said] == [("diverged", f"run: loss diverged, {where}")]
        assert "lower train.learning_rate" in said[0].message
    rules.set(**{"notify.on_diverge": False})
    rules.see(StateEvent("running", "resume"))
    assert rules.see(StateEvent("paused", "loss diverged")) == []


def test_alerts_and_ends_each_follow_their_own_switch() -> None:
    """on_alert and on_finish turn their notices off without touching the others."""
    rules = Rules(**{"notify.on_alert": False})
    assert rules.see(AlertEvent("grad_spike", 4, "the gradient norm jumped")) == []
    rules.set(**{"notify.on_alert": True, "notify.on_finish": False})
    (alert,) = rules.see(AlertEvent("grad_spike", 4, "the gradient norm jumped"))
    assert (alert.kind, alert.title, alert.step) == ("alert", "run: grad_spike alert", 4)
    rules.see(StateEvent("running", "start"))
    assert rules.see(StateEvent("finished", "max_iters reached")) == []


def test_the_val_loss_target_is_told_once_and_a_new_target_rearms() -> None:
    """The first eval at or under the target is told once; None, NaN and a loss above it
    are not; a hot change to a lower target is told when reached, to one already passed not."""
    rules = Rules(**{"notify.val_loss_target": 2.0})
    assert rules.see(evaluated(10, None), evaluated(20, math.nan), evaluated(30, 2.5)) == []
    (reached,) = rules.see(evaluated(40, 2.0), evaluated(50, 1.9), evaluated(60, 2.2))
    assert (reached.kind, reached.step, reached.title) == ("target", 40, "run: val loss reached 2")
    assert reached.message.startswith("val loss 2.0000 at step 40")
    assert rules.see(evaluated(70, 1.95)) == []
    rules.set(**{"notify.val_loss_target": 1.5})
    assert rules.see(evaluated(80, 1.6)) == []
    assert kinds(rules.see(evaluated(90, 1.4))) == ["target"]
    rules.set(**{"notify.val_loss_target": 1.8})
    assert rules.see(evaluated(100, 1.3)) == []


def test_a_resumed_run_already_past_its_target_is_not_told_again() -> None:
    """An engine resuming a run whose best val loss is at or under the target says
    nothing at its evals, however they go."""
    rules = Rules(best_val_loss=1.7, **{"notify.val_loss_target": 2.0})
    assert rules.see(evaluated(500, 1.9), evaluated(510, 2.4), evaluated(520, 1.8)) == []


def test_a_run_that_starts_over_may_reach_its_target_again() -> None:
    """After a hello at step 0 (a restart with a fresh model) the target is told again;
    after one at a checkpoint's step (a rollback) it is not."""
    rules = Rules(**{"notify.val_loss_target": 2.0})
    assert kinds(rules.see(evaluated(40, 1.9))) == ["target"]
    assert rules.see(decode({"event": "hello", "step": 30}), evaluated(40, 1.9)) == []
    assert kinds(rules.see(decode({"event": "hello", "step": 0}), evaluated(40, 1.9))) == ["target"]


def started(rules: Rules, steps: int = USUAL_AFTER + 5) -> None:
    """Running, with `steps` steps of STEP_S after the first gap measured."""
    rules.see(StateEvent("running", "start"))
    rules.steps(1, steps)


def test_a_stalled_step_is_told_once_and_rearms_when_steps_resume() -> None:
    """No step for stall_after times the usual gap is one notice naming the step, not
    repeated while it lasts; once steps come again, the next stall is told too."""
    rules = Rules(**{"notify.stall_after": 10})
    started(rules, 8)
    assert rules.stalled_after(10 * STEP_S - 1) is None
    stall = rules.stalled_after(1)
    assert stall is not None and stall.kind == "stalled" and stall.step == 8
    assert stall.title == "run: no step for 5m00s"
    assert stall.message.startswith("step 9 has taken 5m00s where steps like it take about 30 s")
    assert rules.stalled_after(1000) is None
    rules.steps(9, 9, seconds=0)
    assert rules.stalled_after(10 * STEP_S) is not None


def test_the_gap_of_an_eval_is_no_stall() -> None:
    """A step that evaluates may take an eval's worth more; once one is measured, as long
    as it took, times stall_after; a checkpoint counts the same."""
    every = {"train.eval_interval": 10, "train.checkpoint_interval": 15}
    rules = Rules(**{"notify.stall_after": 3, "train.eval_iters": 20, **every})
    started(rules, 8)  # step 9 next: plain
    assert rules.stalled_after(3 * STEP_S) is not None
    rules.steps(9, 9)  # step 10 next: evaluates, never measured yet: (1 + 2 * 20) steps' worth
    assert rules.stalled_after(3 * 41 * STEP_S - 1) is None
    rules.steps(10, 14, seconds=1)  # step 10 took 3 * 41 * STEP_S, the longest busy gap
    assert rules.stalled_after(3 * 3 * 41 * STEP_S - 1) is None  # 15 saves: as long, times 3
    assert rules.stalled_after(1) is not None


def test_no_stall_before_the_usual_is_known_below_the_floor_or_when_off() -> None:
    """The first gaps after a start are not judged; no stall is shorter than the floor;
    a pause stops the clock; stall_after = 0 turns it off."""
    rules = Rules(**{"notify.stall_after": 10})
    rules.see(StateEvent("running", "start"))
    rules.steps(1, USUAL_AFTER)  # the gaps after the first: one short of knowing
    assert rules.stalled_after(10_000) is None
    fast = Rules(**{"notify.stall_after": 10})
    started(fast)  # a step of 0.1 s: the floor decides
    fast.steps(11, 30, seconds=0.1)
    assert fast.stalled_after(STALL_FLOOR_S - 1) is None
    assert fast.stalled_after(1) is not None
    paused = Rules(**{"notify.stall_after": 10})
    started(paused)
    paused.see(StateEvent("paused", "pause"))
    assert paused.stalled_after(10_000) is None
    off = Rules(**{"notify.stall_after": 0})
    started(off)
    assert off.stalled_after(10_000) is None


def test_a_change_of_schedule_or_model_forgets_the_usual_gap() -> None:
    """After a change to [train] (a bigger batch: slower steps), the clock judges again
    only once it has measured the new steps; a change elsewhere keeps what it knows; a
    hello (a restart's new model) forgets too."""
    rules = Rules(**{"notify.stall_after": 10})
    started(rules)
    rules.see(ConfigAppliedEvent(step=15, changes={"sample.top_k": [0, 5]}))
    assert rules.stalled_after(10 * STEP_S) is not None
    rules.steps(16, 16)
    rules.see(ConfigAppliedEvent(step=16, changes={"train.batch_size": [12, 120]}))
    assert rules.stalled_after(10 * STEP_S) is None
    rules.steps(17, 17 + USUAL_AFTER, seconds=10 * STEP_S)
    assert rules.stalled_after(10 * 10 * STEP_S - 1) is None
    assert rules.stalled_after(1) is not None
    rules.see(decode({"event": "hello", "step": 0}), StateEvent("running", "start"))
    rules.steps(1, USUAL_AFTER)
    assert rules.stalled_after(10_000) is None


@pytest.mark.parametrize("state", ["finished", "paused", "idle"])
def test_the_clock_stops_with_training(state: str) -> None:
    """Whatever ends training also ends the wait for the next step."""
    rules = Rules(**{"notify.stall_after": 10})
    started(rules)
    rules.see(StateEvent(state, "x"))
    assert rules.stalled_after(10_000) is None

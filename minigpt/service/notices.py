"""What the engine tells the user of: the rules, from the events it emits and a clock.

`NoticeRules.see(event, now)` takes every event the engine emits, in order, and returns the
`NoticeEvent` it calls for, or None; `stalled(now)` is the watchdog's question, asked from a
thread of its own, since the training loop may be what is stuck. `now` is
`time.monotonic()` in the engine and any number in the tests. The [notify] keys in force
are read at each call, so a change applies at once:

- finished, failed (notify.on_finish): training ended, at max_iters or by an error other
  than a diverged loss (a run that was already finished when the engine started says
  nothing);
- diverged (notify.on_diverge): training paused (or, under `minigpt train`, failed) because
  the loss diverged, a NaN loss included; the message is the error that said what to change;
- alert (notify.on_alert): any alert but the diverged one, which the line above covers;
- target (notify.val_loss_target, 0 = off): an eval's val loss reached the target while the
  lowest before it (this engine's evals, and the run's best when the engine started) was
  above it: once per target, never for a resumed run already past it, and again for a new
  target not yet reached. A run that starts over from step 0 forgets its lowest.
- stalled (notify.stall_after, 0 = off): while running, no step for stall_after times the
  usual time of a step like the one under way (`StallClock`), and for at least
  STALL_FLOOR_S; once per stall, again once steps resume and stop again. Steps are timed
  afresh after a change to [train] or a hello (a restarted model, or one rolled back).

Event fields may be None or NaN (an eval of broken weights): a val loss that is not a
number reaches no target.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
from collections.abc import Callable

from minigpt.config import Config
from minigpt.display import duration, number
from minigpt.events import (
    DIVERGED,
    FAILED,
    FINISHED,
    PAUSED,
    RUNNING,
    AlertEvent,
    ConfigAppliedEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    HelloEvent,
    NoticeEvent,
    StateEvent,
    StepEvent,
)

STALL_FLOOR_S = 60.0  # no wait shorter than this is a stall, however fast the steps
USUAL_AFTER = 5  # plain gaps measured before the clock judges any: the first say little
GAP_WINDOW = 50  # the latest plain gaps, whose median is the usual one
BUSY_WINDOW = 3  # the latest gaps with an eval or a checkpoint in them, whose longest counts


class StallClock:
    """How long the step under way has taken, against how long a step like it takes.

    The engine hears of a step once `Run.advance()` returns, with the eval and checkpoint
    that fell due at it, so the gap before such a busy step holds them too: busy gaps are
    measured apart from plain ones. Until one is, a busy step may take an eval's worth
    more (2 * eval_iters batches, forward only: each cheaper than a training step).
    """

    def __init__(self) -> None:
        """Stopped, knowing no gap."""
        self.plain: deque[float] = deque(maxlen=GAP_WINDOW)
        self.busy: deque[float] = deque(maxlen=BUSY_WINDOW)
        self.since: float | None = None  # the last step's time, or the start's; None: stopped
        self.measuring = False  # the gap under way follows a step, not a start
        self.told = False  # the gap under way was called a stall already

    def start(self, now: float) -> None:
        """Training (re)started: its first gap holds the start's own work, and is not kept."""
        self.since, self.measuring, self.told = now, False, False

    def stop(self) -> None:
        """Training stopped: no gap is under way."""
        self.since = None

    def forget(self) -> None:
        """Forget the gaps measured (a change of batch size or schedule makes them wrong)."""
        self.plain.clear()
        self.busy.clear()

    def step(self, now: float, busy: bool) -> None:
        """A step finished (busy: with an eval or a checkpoint); the next gap begins."""
        if self.since is not None and self.measuring:
            (self.busy if busy else self.plain).append(now - self.since)
        self.since, self.measuring, self.told = now, True, False

    def usual(self, busy: bool, eval_iters: int) -> float | None:
        """Seconds a step takes (a busy one when busy); None until enough are measured."""
        if len(self.plain) < USUAL_AFTER:
            return None
        plain = statistics.median(self.plain)
        if not busy:
            return plain
        return max(self.busy) if self.busy else plain * (1 + 2 * eval_iters)

    def overdue(
        self, now: float, factor: float, busy: bool, eval_iters: int
    ) -> tuple[float, float] | None:
        """(seconds waited, usual seconds) the first time the gap under way is a stall."""
        usual = self.usual(busy, eval_iters)
        if self.since is None or self.told or not factor or usual is None:
            return None
        waited = now - self.since
        if waited < max(STALL_FLOOR_S, factor * usual):
            return None
        self.told = True
        return waited, usual


class NoticeRules:
    """The notices one engine's events call for; safe to ask from two threads."""

    def __init__(self, run: str, config: Callable[[], Config], best_val_loss: float) -> None:
        """Rules for the run named `run` (every title starts with it), under the config
        `config()` gives, which had reached `best_val_loss` when the engine started."""
        self.run = run
        self.config = config
        self.lowest = best_val_loss if math.isfinite(best_val_loss) else math.inf
        self.val_loss: float | None = None  # the latest eval's
        self.step: int | None = None  # the latest step heard of
        self.running = False
        self.error = ""  # the latest error since the last state change: why it failed
        self.clock = StallClock()
        self.lock = threading.Lock()

    def see(self, event: Event, now: float) -> NoticeEvent | None:
        """The notice `event`, emitted at `now`, calls for, if any."""
        with self.lock:
            if isinstance(event, StepEvent):
                self.step = event.step
                self.clock.step(now, self._busy(event.step))
            elif isinstance(event, EvalEvent):
                return self._eval(event)
            elif isinstance(event, AlertEvent):
                if event.kind != "diverged" and self.config().notify.on_alert:
                    return self._notice("alert", f"{event.kind} alert", event.message, event.step)
            elif isinstance(event, ErrorEvent):
                self.error = event.message
            elif isinstance(event, ConfigAppliedEvent):
                if any(key.startswith("train.") for key in event.changes):
                    self.clock.forget()
            elif isinstance(event, HelloEvent):  # a restart, or a rollback after divergence
                self.step = event.step
                self.clock.forget()  # maybe another model: its steps are timed afresh
                if not event.step:
                    self.lowest = math.inf
            elif isinstance(event, StateEvent):
                return self._state(event, now)
            return None

    def stalled(self, now: float) -> NoticeEvent | None:
        """The stall notice, once, when the step under way has taken too long by `now`."""
        with self.lock:
            config = self.config()
            step = (self.step or 0) + 1
            factor = config.notify.stall_after
            overdue = self.clock.overdue(now, factor, self._busy(step), config.train.eval_iters)
            if overdue is None:
                return None
            waited, usual = overdue
            message = (
                f"step {step} has taken {duration(waited)} where steps like it take about "
                f"{usual:.3g} s (notify.stall_after = {factor:g} times that): the training "
                "loop is stuck or starved, e.g. by a hung GPU or disk, or a machine swapping"
            )
            return self._notice("stalled", f"no step for {duration(waited)}", message)

    def _busy(self, step: int | None) -> bool:
        """Whether the advance that ends at `step` also evaluates or saves."""
        train = self.config().train
        if step is None:
            return False
        due = (train.eval_interval, train.checkpoint_interval)
        return step >= train.max_iters or any(step % every == 0 for every in due)

    def _eval(self, event: EvalEvent) -> NoticeEvent | None:
        """The target notice, when this eval's val loss is the first to reach it."""
        self.step = event.step if event.step is not None else self.step
        val = event.val_loss
        if val is None or not math.isfinite(val):
            return None
        before, self.lowest = self.lowest, min(self.lowest, val)
        self.val_loss = val
        target = self.config().notify.val_loss_target
        if not target or not val <= target < before:
            return None
        message = f"val loss {val:.4f} at step {number(event.step, ',')} (notify.val_loss_target)"
        return self._notice("target", f"val loss reached {target:g}", message, event.step)

    def _state(self, event: StateEvent, now: float) -> NoticeEvent | None:
        """The notice for the end of training, when it ran until now."""
        error, self.error = self.error, ""
        was_running, self.running = self.running, event.state == RUNNING
        if self.running:
            self.clock.start(now)
        else:
            self.clock.stop()
        if not was_running:
            return None
        notify = self.config().notify
        why = error or event.reason
        if event.reason == DIVERGED and event.state in (PAUSED, FAILED):
            if not notify.on_diverge:
                return None
            where = "paused" if event.state == PAUSED else "stopped"
            return self._notice("diverged", f"loss diverged, {where}", why)
        if event.state == FINISHED and notify.on_finish:
            best = self.lowest if math.isfinite(self.lowest) else None
            message = (
                f"{number(self.step, ',')} steps trained; val loss "
                f"{number(self.val_loss, '.4f')}, best {number(best, '.4f')}"
            )
            return self._notice("finished", f"finished at step {number(self.step, ',')}", message)
        if event.state == FAILED and notify.on_finish:
            return self._notice("failed", "training failed", why)
        return None

    def _notice(self, kind: str, what: str, message: str, step: int | None = None) -> NoticeEvent:
        """A notice titled with the run's name, at `step` (default: the latest)."""
        return NoticeEvent(
            kind, f"{self.run}: {what}", message, self.step if step is None else step
        )

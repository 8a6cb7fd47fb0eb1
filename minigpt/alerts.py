"""Alerts: plain-words warnings when a run's own figures say training is unhealthy.

`Alerts.feed(event)` takes each step and eval event of a run, in order, and returns
the `AlertEvent`s it raises. Each kind fires once, then stays quiet until its
condition clears, so a long unhealthy stretch is one alert, not one per step.

Each rule compares the run with a yardstick that a healthy run stays far from
(a uniform guess, the run's own best, the size a layer keeps its signal at), by
a margin wide enough that any valid float arithmetic (another CPU's kernels,
another thread count) lands on the same side; none waits for a pattern to
fill a window at the right moment:

- init_loss: the loss before training is more than 25% away from ln(vocab size),
  what a model that guesses every token equally likely scores;
- diverged: a step's loss is not a finite number, or over twice ln(vocab size):
  the model is confidently wrong, its weights thrown far off by too long a step
  (clears once the loss is back under ln(vocab size));
- too_high_lr: the mean loss of the last 20 steps climbed a tenth above the
  lowest such mean of the run (clears within 2% of it; below a loss of 1, the
  shares are of 1 nat, so a tiny loss wobbling is no climb);
- weights_too_large: a block's weight matrices grew to a root mean square ten
  times 1/sqrt(d_model), the size at which a layer passes on its input's scale:
  each layer then multiplies its signal, attention saturates, and the model
  barely learns (what Muon at a huge rate does, without the loss ever rising);
- grad_spike: a gradient norm over ten times the median of the recent ones;
- overfitting: the val loss 5% above its best while the train loss went on
  falling below where it was at that best (clears within 2.5% of the best; nats
  below 1, as above);
- memorising: over the last 3 evals the train loss fell by more than 5% (nats
  below 1, as above) while the val loss's best fell by less than a quarter as
  much, on a run that has read its train split at least once: the gap between
  them widens by most of what training gains, which is what repeating text the
  model has seen does, whether or not the val loss ever climbs (clears once the
  best val loss falls at least half as far as the train loss over the last 3
  evals). A model that learns what carries over lowers both about alike; a
  plateau moves neither by 5%.

Messages that blame the learning rate name the rates in force and which one to
lower (see `rate_advice`).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable
from typing import Any

from minigpt.config import Config, TrainConfig
from minigpt.estimate import block_matrix_weights
from minigpt.events import AlertEvent, EvalEvent, Event, StepEvent

INIT_LOSS_TOLERANCE = 0.25  # relative distance from ln(vocab) that a fresh model may be off
DIVERGED_FACTOR = 2.0  # a loss this many times ln(vocab) is divergence
CLIMB_WINDOW = 20  # steps whose mean loss is compared with the run's lowest such mean
# How far the mean may rise above the lowest mean before too_high_lr is raised / cleared, as a
# share of that lowest mean (of 1 nat below a loss of 1, where a small wobble is a large share)
CLIMB, CLIMB_CLEAR = 0.10, 0.02
WEIGHT_SCALE = 10.0  # a block's weight RMS over 1/sqrt(d_model) that is too large
SPIKE_FACTOR = 10.0  # a gradient norm this many times the recent median is a spike
SPIKE_WINDOW = 50  # recent gradient norms the median is taken over
SPIKE_MIN_STEPS = 10  # norms needed before any median is trusted
OVERFIT_RISE, OVERFIT_CLEAR = 0.05, 0.025  # the same for the val loss over its best
MEMO_EVALS = 3  # evals back that memorising compares the latest eval with
MEMO_FALL = 0.05  # the least train loss fall over them, as a share (of 1 nat below 1)
# The share of the train loss's fall that the best val loss must miss / match to raise /
# clear memorising: a quarter leaves the gap widening by three quarters of the gain
MEMO_SHARE, MEMO_CLEAR_SHARE = 0.25, 0.5


def _in_force(train: TrainConfig) -> list[tuple[str, float, float]]:
    """(key, value, default) of each learning rate the run's optimizers use."""
    defaults = TrainConfig()
    keys = ["learning_rate", *(["muon_learning_rate"] if train.optimizer == "muon" else [])]
    return [(key, getattr(train, key), getattr(defaults, key)) for key in keys]


def _suspects(train: TrainConfig, blame: str | None) -> list[tuple[str, float, float]]:
    """The rates that may be at fault: `blame` alone when given, else the one furthest
    above its default, else all of them."""
    rates = [rate for rate in _in_force(train) if blame in (None, rate[0])]
    worst = max(rates, key=lambda rate: rate[1] / rate[2])
    return [worst] if worst[1] > worst[2] else rates


def rates_to_lower(train: TrainConfig, blame: str | None = None) -> list[str]:
    """The dotted keys of the learning rates to lower (see rate_advice)."""
    return [f"train.{key}" for key, _, _ in _suspects(train, blame)]


def rate_advice(train: TrainConfig, blame: str | None = None) -> str:
    """The learning rates in force and which to lower: `blame` (a key of train), else the
    one furthest above its default, else all of them, with a longer warmup."""
    in_force = " and ".join(f"train.{key} = {value:.3g}" for key, value, _ in _in_force(train))
    suspects = _suspects(train, blame)
    key, value, default = suspects[0]
    if value > default:
        return (
            f"the rates in force are {in_force}; lower train.{key} "
            f"({value / default:.3g}x its default {default:.3g})"
        )
    lower = " and ".join(f"train.{key}" for key, _, _ in suspects)
    return f"the rates in force are {in_force}; lower {lower}, or raise train.warmup_iters"


def _above(loss: float, reference: float, share: float) -> bool:
    """Whether a loss is more than `share` of a reference loss above it (of 1 nat, for a
    reference under 1)."""
    return loss - reference > share * max(reference, 1.0)


class Alerts:
    """Watches one run's events; each alert kind is raised again only after it clears."""

    def __init__(self, vocab_size: int, config: Callable[[], Config] = Config) -> None:
        """Expect a fresh model's loss near ln(vocab_size); `config` gives the one in force
        (the rates to name, the model's width)."""
        self.vocab_size = vocab_size
        self.config = config
        self.active: set[str] = set()  # kinds raised and not cleared since
        self.losses: deque[float] = deque(maxlen=CLIMB_WINDOW)  # the latest finite step losses
        self.lowest_mean = math.inf  # the lowest mean of CLIMB_WINDOW steps so far
        self.norms: deque[float] = deque(maxlen=SPIKE_WINDOW)
        self.best: tuple[float, float] | None = None  # (val, train) at the lowest val loss
        # (train loss, lowest val loss so far) at the latest MEMO_EVALS + 1 evals
        self.evals: deque[tuple[float, float]] = deque(maxlen=MEMO_EVALS + 1)

    def state_dict(self) -> dict[str, Any]:
        """What the alerts have seen, as plain values a checkpoint keeps, so a resumed run
        goes on watching without reading its history again."""
        return {
            "active": sorted(self.active),
            "losses": list(self.losses),
            "lowest_mean": self.lowest_mean,
            "norms": list(self.norms),
            "best": None if self.best is None else list(self.best),
            "evals": [list(pair) for pair in self.evals],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take up what state_dict() recorded."""
        self.active = set(state["active"])
        self.losses.extend(float(loss) for loss in state["losses"])
        self.lowest_mean = float(state["lowest_mean"])
        self.norms.extend(float(norm) for norm in state["norms"])
        best = state["best"]
        self.best = None if best is None else (float(best[0]), float(best[1]))
        self.evals.extend((float(train), float(val)) for train, val in state["evals"])

    @property
    def uniform_loss(self) -> float:
        """ln(vocab size): the loss of guessing every token equally likely."""
        return math.log(max(2, self.vocab_size))

    def feed(self, event: Event) -> list[AlertEvent]:
        """The alerts this event raises (usually none)."""
        if isinstance(event, StepEvent):
            found = [
                self.diverged(event.step, event.loss),
                self._too_high_lr(event),
                self._grad_spike(event),
            ]
        elif isinstance(event, EvalEvent):
            found = [
                self._init_loss(event),
                self._weights_too_large(event),
                self._overfitting(event),
                self._memorising(event),
            ]
        else:
            return []
        return [alert for alert in found if alert is not None]

    def _raise(
        self, kind: str, now: bool, clear: bool, step: int | None, message: Callable[[], str]
    ) -> AlertEvent | None:
        """An alert of `kind` when `now` holds and it is not already raised; `clear` re-arms it."""
        if kind in self.active:
            if clear:
                self.active.discard(kind)
            return None
        if not now:
            return None
        self.active.add(kind)
        return AlertEvent(kind=kind, step=step, message=message())

    def diverged(self, step: int | None, loss: float | None) -> AlertEvent | None:
        """The diverged alert for a step's loss, when it is one (a NaN loss included)."""
        if loss is None:
            return None
        uniform = self.uniform_loss
        now = not loss <= DIVERGED_FACTOR * uniform  # NaN compares false: it diverged too

        def message() -> str:
            how = (
                f"{loss:.4g}, {loss / uniform:.0f}x ln({self.vocab_size}) = {uniform:.3g} that "
                "guessing every token equally likely scores"
                if math.isfinite(loss)
                else f"{loss}, not a number"
            )
            return (
                f"the loss diverged to {how}: the steps are too long and throw the weights "
                f"far off; {rate_advice(self.config().train)}"
            )

        return self._raise("diverged", now, loss < uniform, step, message)

    def _too_high_lr(self, event: StepEvent) -> AlertEvent | None:
        """The recent steps' mean loss well above the lowest it has been."""
        loss = event.loss
        if loss is None or not math.isfinite(loss):
            return None
        self.losses.append(loss)
        if len(self.losses) < CLIMB_WINDOW:
            return None
        mean = sum(self.losses) / CLIMB_WINDOW
        lowest = self.lowest_mean = min(self.lowest_mean, mean)

        def message() -> str:
            return (
                f"the loss climbed: its mean over the last {CLIMB_WINDOW} steps is {mean:.3g}, "
                f"{mean / lowest - 1:.0%} above the lowest it has been ({lowest:.3g}), so the "
                f"steps overshoot; {rate_advice(self.config().train)}"
            )

        climbing, settled = _above(mean, lowest, CLIMB), not _above(mean, lowest, CLIMB_CLEAR)
        return self._raise("too_high_lr", climbing, settled, event.step, message)

    def _weights_too_large(self, event: EvalEvent) -> AlertEvent | None:
        """A block's matrices far larger than a layer that keeps its signal's scale."""
        norms = [n for n in event.weight_norm or [] if n is not None and math.isfinite(n)]
        if not norms:
            return None
        model = self.config().model
        rms = max(norms) / math.sqrt(block_matrix_weights(model))
        keeps_scale = 1 / math.sqrt(model.d_model)

        def message() -> str:
            train = self.config().train
            # Under Muon the blocks' matrices are Muon's alone: its rate grew them.
            blame = "muon_learning_rate" if train.optimizer == "muon" else "learning_rate"
            return (
                f"the blocks' weights grew to a root mean square of {rms:.3g}, "
                f"{rms / keeps_scale:.0f}x the 1/sqrt(d_model) = {keeps_scale:.3g} at which a "
                "layer keeps its input's scale: each layer multiplies its signal, attention "
                f"saturates, and the model barely learns; {rate_advice(train, blame)}"
            )

        large = rms > WEIGHT_SCALE * keeps_scale
        return self._raise("weights_too_large", large, not large, event.step, message)

    def _grad_spike(self, event: StepEvent) -> AlertEvent | None:
        """A gradient norm far above the recent ones."""
        norm = event.grad_norm
        if norm is None:
            return None
        median = statistics.median(self.norms) if len(self.norms) >= SPIKE_MIN_STEPS else None
        self.norms.append(norm)
        if median is None:
            return None
        spike = not norm <= SPIKE_FACTOR * median  # a NaN norm is a spike too

        def message() -> str:
            return (
                f"the gradient norm jumped to {norm:.3g}, {norm / median:.0f}x its recent median "
                f"{median:.3g}: a batch unlike the others, or the start of divergence; if the "
                f"loss jumps with it, {rate_advice(self.config().train)}"
            )

        return self._raise("grad_spike", spike, not spike, event.step, message)

    def _init_loss(self, event: EvalEvent) -> AlertEvent | None:
        """Loss at step 0 far from uniform guessing over the vocabulary."""
        loss = event.train_loss
        if event.step != 0 or loss is None or not math.isfinite(loss) or self.vocab_size < 2:
            return None
        expected = math.log(self.vocab_size)
        off = abs(loss - expected) / expected

        def message() -> str:
            if loss > expected:
                meaning = (
                    "the fresh model is confidently wrong: its initial output weights are too "
                    "large, and the first steps will go to undoing that rather than learning"
                )
            else:
                meaning = (
                    "the fresh model already beats guessing: the targets may leak into the "
                    "inputs, or the text is mostly repetition"
                )
            return (
                f"the loss before training is {loss:.3g}, {off:.0%} away from "
                f"ln({self.vocab_size}) = {expected:.3g}, what guessing every token equally "
                f"likely scores: {meaning}"
            )

        return self._raise("init_loss", off > INIT_LOSS_TOLERANCE, False, event.step, message)

    def _overfitting(self, event: EvalEvent) -> AlertEvent | None:
        """Val loss well above its best while train loss went on falling."""
        val, train = event.val_loss, event.train_loss
        if val is None or train is None or not math.isfinite(val + train):
            return None
        if self.best is None or val < self.best[0]:
            self.best = (val, train)
        best_val, train_at_best = self.best

        def message() -> str:
            return (
                f"val loss rose to {val:.3g}, {val / best_val - 1:.0%} above its best "
                f"({best_val:.3g}), while train loss fell on to {train:.3g}: the model is "
                "memorising its training text instead of learning what carries over; raise "
                "model.dropout, use more text, or stop at best.ckpt"
            )

        overfitting = _above(val, best_val, OVERFIT_RISE) and train < train_at_best
        cleared = not _above(val, best_val, OVERFIT_CLEAR)
        return self._raise("overfitting", overfitting, cleared, event.step, message)

    def _memorising(self, event: EvalEvent) -> AlertEvent | None:
        """Train loss falling over the last evals while the best val loss barely moves."""
        val, train = event.val_loss, event.train_loss
        if val is None or train is None or not math.isfinite(val + train):
            return None
        best = min(val, self.evals[-1][1]) if self.evals else val
        self.evals.append((train, best))
        if len(self.evals) <= MEMO_EVALS:
            return None
        train_then, best_then = self.evals[0]
        train_fall, val_fall = train_then - train, best_then - best
        read_once = event.epochs is None or event.epochs >= 1

        def message() -> str:
            epochs = event.epochs
            read = "" if epochs is None else f", which it has read {epochs:.3g} times over,"
            return (
                f"train loss fell from {train_then:.3g} to {train:.3g} over the last "
                f"{MEMO_EVALS} evals while the best val loss only went from {best_then:.3g} "
                f"to {best:.3g}: the model is memorising its training text{read} instead of "
                "learning what carries over to new text; more text, more model.dropout, a "
                "smaller model or fewer train.max_iters help (best.ckpt holds the weights at "
                "the best val loss)"
            )

        memorising = (
            read_once
            and _above(train_then, train, MEMO_FALL)
            and val_fall < MEMO_SHARE * train_fall
        )
        cleared = val_fall > 0 and val_fall >= MEMO_CLEAR_SHARE * train_fall
        return self._raise("memorising", memorising, cleared, event.step, message)

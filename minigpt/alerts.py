"""Alerts: plain-words warnings when a run's own figures say training is unhealthy.

`Alerts.feed(event)` takes each step and eval event of a run, in order, and returns
the `AlertEvent`s it raises. Each kind fires once, then stays quiet until its
condition clears, so a long unhealthy stretch is one alert, not one per step:

- init_loss: the loss before training is more than 25% away from ln(vocab size),
  what a model that guesses every token equally likely scores;
- overfitting: val loss rose at three evals in a row while train loss fell;
- grad_spike: a gradient norm over ten times the median of the recent ones;
- too_high_lr: more than half of the last 20 steps had their gradients clipped while
  the loss climbed by a tenth (clears once at most a quarter are clipped).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque

from minigpt.events import AlertEvent, EvalEvent, Event, StepEvent

INIT_LOSS_TOLERANCE = 0.25  # relative distance from ln(vocab) that a fresh model may be off
RISES = 3  # consecutive evals with a higher val loss that make overfitting
SPIKE_FACTOR = 10.0  # a gradient norm this many times the recent median is a spike
SPIKE_WINDOW = 50  # recent gradient norms the median is taken over
SPIKE_MIN_STEPS = 10  # norms needed before any median is trusted
CLIP_WINDOW = 20  # recent steps whose clipping is counted
CLIP_FIRE, CLIP_CLEAR = 0.5, 0.25  # clipped fractions that raise and clear too_high_lr
CLIMB = 1.1  # the last half of those steps' mean loss over the first half's that is climbing


class Alerts:
    """Watches one run's events; each alert kind is raised again only after it clears."""

    def __init__(self, vocab_size: int) -> None:
        """Expect a fresh model's loss near ln(vocab_size)."""
        self.vocab_size = vocab_size
        self.active: set[str] = set()  # kinds raised and not cleared since
        self.losses: deque[tuple[float, float]] = deque(maxlen=RISES + 1)  # (train, val)
        self.norms: deque[float] = deque(maxlen=SPIKE_WINDOW)
        self.recent: deque[tuple[bool, float]] = deque(maxlen=CLIP_WINDOW)  # (clipped, loss)

    def feed(self, event: Event) -> list[AlertEvent]:
        """The alerts this event raises (usually none)."""
        if isinstance(event, StepEvent):
            found = [self._grad_spike(event), self._too_high_lr(event)]
        elif isinstance(event, EvalEvent):
            found = [self._init_loss(event), self._overfitting(event)]
        else:
            return []
        return [alert for alert in found if alert is not None]

    def _raise(
        self, kind: str, now: bool, clear: bool, step: int | None, message: str
    ) -> AlertEvent | None:
        """An alert of `kind` when `now` holds and it is not already raised; `clear` re-arms it."""
        if kind in self.active:
            if clear:
                self.active.discard(kind)
            return None
        if not now:
            return None
        self.active.add(kind)
        return AlertEvent(kind=kind, step=step, message=message)

    def _init_loss(self, event: EvalEvent) -> AlertEvent | None:
        """Loss at step 0 far from uniform guessing over the vocabulary."""
        if event.step != 0 or event.train_loss is None or self.vocab_size < 2:
            return None
        expected = math.log(self.vocab_size)
        loss = event.train_loss
        off = abs(loss - expected) / expected
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
        message = (
            f"the loss before training is {loss:.3g}, {off:.0%} away from ln({self.vocab_size})"
            f" = {expected:.3g}, what guessing every token equally likely scores: {meaning}"
        )
        return self._raise("init_loss", off > INIT_LOSS_TOLERANCE, False, event.step, message)

    def _overfitting(self, event: EvalEvent) -> AlertEvent | None:
        """Val loss rising eval after eval while train loss falls."""
        if event.train_loss is None or event.val_loss is None:
            return None
        self.losses.append((event.train_loss, event.val_loss))
        vals = [val for _, val in self.losses]
        rises = [a < b for a, b in itertools.pairwise(vals)]
        falling = self.losses[-1][0] < self.losses[0][0]
        message = (
            f"val loss rose at {RISES} evals in a row (to {event.val_loss:.3g}) while train loss "
            "fell: the model is memorising its training text instead of learning what carries "
            "over; raise model.dropout, use more text, or stop at best.ckpt"
        )
        overfitting = len(rises) == RISES and all(rises) and falling
        cleared = bool(rises) and not rises[-1]
        return self._raise("overfitting", overfitting, cleared, event.step, message)

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
        message = (
            f"the gradient norm jumped to {norm:.3g}, {norm / median:.0f}x its recent median "
            f"{median:.3g}: a batch unlike the others, or the start of divergence; if the loss "
            "jumps with it, lower train.learning_rate"
        )
        return self._raise("grad_spike", spike, not spike, event.step, message)

    def _too_high_lr(self, event: StepEvent) -> AlertEvent | None:
        """Most recent steps clipped while the loss climbs."""
        if event.clipped is None or event.loss is None:
            return None
        self.recent.append((event.clipped, event.loss))
        share = sum(clipped for clipped, _ in self.recent) / len(self.recent)
        # Small models clip most steps while they learn well, and clip on at a loss
        # plateau: only clipping that comes with a climbing loss says the steps are too long.
        half = CLIP_WINDOW // 2
        losses = [loss for _, loss in self.recent]
        climbing = not sum(losses[half:]) <= CLIMB * sum(losses[:half])  # NaN climbs too
        high = len(self.recent) == CLIP_WINDOW and share > CLIP_FIRE and climbing
        lr = "" if event.lr is None else f" ({event.lr:.3g})"
        message = (
            f"{share:.0%} of the last {CLIP_WINDOW} steps had gradients over train.grad_clip "
            "and were clipped while the loss climbed: the learning rate"
            f"{lr} is likely too high for this model; lower train.learning_rate or raise "
            "train.warmup_iters"
        )
        return self._raise("too_high_lr", high, share <= CLIP_CLEAR, event.step, message)

"""The stats panel: where the run is and how fast it goes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from minigpt.display import duration, number, ratio
from minigpt.events import EvalEvent, StepEvent

CLIPPED_WINDOW = 50  # steps over which the clipped share is taken


@dataclass
class RunStats:
    """Numbers the panel shows; the top row keeps them current."""

    step: int | None = 0
    max_iters: int | None = 0
    tokens_per_sec: float | None = None
    ms_per_step: float | None = None
    train_seconds: float | None = 0.0
    lr: float | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    checkpoint_step: int | None = None
    grad_norm: float | None = None
    clipped: deque[bool] = field(default_factory=lambda: deque(maxlen=CLIPPED_WINDOW))
    val_bpb: float | None = None
    epochs: float | None = None
    update_ratio: float | None = None  # the largest block's, at the last eval

    def add_step(self, event: StepEvent) -> None:
        """Take a training step's numbers."""
        self.step = event.step
        self.lr = event.lr
        self.tokens_per_sec = event.tokens_per_sec
        self.ms_per_step = event.ms_per_step
        self.train_seconds = event.elapsed
        self.grad_norm = event.grad_norm
        if event.clipped is not None:
            self.clipped.append(event.clipped)

    def add_eval(self, event: EvalEvent) -> None:
        """Take an evaluation's numbers (of the update ratios, the largest block's)."""
        self.val_loss = event.val_loss
        self.best_val_loss = event.best_val_loss
        self.val_bpb = event.val_bpb
        self.epochs = event.epochs
        ratios = [r for r in event.update_ratio or [] if r is not None]
        self.update_ratio = max(ratios) if ratios else None

    @property
    def clipped_share(self) -> float | None:
        """The share of recent steps whose gradient was clipped."""
        return sum(self.clipped) / len(self.clipped) if self.clipped else None

    @property
    def eta_seconds(self) -> float | None:
        """Time to max_iters at the current pace."""
        step, last = self.step, self.max_iters
        if not self.ms_per_step or self.ms_per_step < 0 or step is None or last is None:
            return None
        steps_a_second = ratio(1000, self.ms_per_step)
        return ratio(max(0, last - step), steps_a_second)


class StatsPanel(Vertical):
    """Step and progress, speed, time, lr, val losses, last checkpoint."""

    def __init__(self, **kwargs: Any) -> None:
        """Make the parts up front, so show() works at any moment."""
        super().__init__(**kwargs)
        self.step_line = Static(id="step-line")
        self.progress = ProgressBar(total=1, show_eta=False, id="progress")
        self.numbers = Static(id="numbers")

    def compose(self) -> ComposeResult:
        """A progress bar over the numbers."""
        yield self.step_line
        yield self.progress
        yield self.numbers

    def show(self, stats: RunStats) -> None:
        """Display these numbers."""
        self.step_line.update(f"step {number(stats.step, ',')} / {number(stats.max_iters, ',')}")
        fraction = ratio(max(0, stats.step or 0), max(0, stats.max_iters or 0)) or 0.0
        self.progress.update(total=1000, progress=round(1000 * min(1.0, fraction)))
        saved = number(stats.checkpoint_step, ",")
        clipped = stats.clipped_share
        self.numbers.update(
            f"tokens/s  {number(stats.tokens_per_sec, ',.0f')} · "
            f"{number(stats.ms_per_step, '.1f')}ms\n"
            f"elapsed   {duration(stats.train_seconds)} · ETA {duration(stats.eta_seconds)}\n"
            f"lr        {number(stats.lr, '.2e')}\n"
            f"grad norm {number(stats.grad_norm, '.3g')}"
            f"{'' if clipped is None else f' · {clipped:.0%} clip'}\n"
            f"update    {number(stats.update_ratio, '.1e')}\n"
            f"val loss  {number(stats.val_loss, '.4f')}\n"
            f"best val  {number(stats.best_val_loss, '.4f')}\n"
            f"val bpb   {number(stats.val_bpb, '.3f')} · {number(stats.epochs, '.2f')} ep\n"
            f"saved     step {saved}"
        )

"""The stats panel: where the run is and how fast it goes."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from minigpt.display import duration, number, ratio


@dataclass
class RunStats:
    """Numbers the panel shows; the app keeps them current."""

    step: int | None = 0
    max_iters: int | None = 0
    tokens_per_sec: float | None = None
    ms_per_step: float | None = None
    train_seconds: float | None = 0.0
    lr: float | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    checkpoint_step: int | None = None

    @property
    def eta_seconds(self) -> float | None:
        """Time to max_iters at the current pace."""
        if not self.ms_per_step or self.ms_per_step < 0 or None in (self.max_iters, self.step):
            return None
        steps_a_second = ratio(1000, self.ms_per_step)
        return ratio(max(0, self.max_iters - self.step), steps_a_second)  # type: ignore[operator]


class StatsPanel(Vertical):
    """Step and progress, speed, time, lr, val losses, last checkpoint."""

    def __init__(self, **kwargs: object) -> None:
        """Make the parts up front, so show() works at any moment."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
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
        self.numbers.update(
            f"tokens/s  {number(stats.tokens_per_sec, ',.0f')}\n"
            f"ms/step   {number(stats.ms_per_step, '.1f')}\n"
            f"elapsed   {duration(stats.train_seconds)}\n"
            f"ETA       {duration(stats.eta_seconds)}\n"
            f"lr        {number(stats.lr, '.2e')}\n"
            f"val loss  {number(stats.val_loss, '.4f')}\n"
            f"best val  {number(stats.best_val_loss, '.4f')}\n"
            f"saved     step {saved}"
        )

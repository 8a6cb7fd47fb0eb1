"""The row above the tabs: the loss chart (or the gradient-norm chart), the numbers and the
learning rate. The app feeds it every step and eval; it keeps the numbers and draws."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.worker import get_current_worker

from minigpt.config import Config
from minigpt.events import EvalEvent, HelloHistory, StepEvent
from tui.charts import HealthChart, LearningRateChart, LossChart
from tui.compare import val_curves
from tui.stats import RunStats, StatsPanel


class TopRow(Horizontal):
    """Charts and numbers of one run."""

    def __init__(self, **kwargs: Any) -> None:
        """Make the parts up front, so events can be drawn at any moment."""
        super().__init__(**kwargs)
        self.loss_chart = LossChart(id="loss")
        self.health_chart = HealthChart(id="health")
        self.stats_panel = StatsPanel(id="stats")
        self.lr_chart = LearningRateChart(id="lr")
        self.stats = RunStats()

    def compose(self) -> ComposeResult:
        """Loss and gradient-norm charts (one shows at a time), then numbers over lr."""
        yield self.loss_chart
        yield self.health_chart
        with Vertical(id="side"):
            yield self.stats_panel
            yield self.lr_chart

    def load(
        self,
        step: int | None,
        running: Config | None,
        vocab_size: int | None,
        history: HelloHistory,
    ) -> RunStats:
        """Start over from a hello: its numbers (returned), and the run's history on every
        chart."""
        train = running.train if running else None
        self.stats = stats = RunStats(
            step=step,
            max_iters=train.max_iters if train else None,
            train_seconds=history.train_seconds,
        )
        self.loss_chart.reset(vocab_size)
        self.lr_chart.reset()
        self.health_chart.reset(train.grad_clip if train else None)
        for step, loss, lr in history.steps:
            self.loss_chart.add_step(step, loss)
            self.lr_chart.add_step(step, lr)
        for evaluation in history.evals:
            self.add_eval(evaluation)
        for change in history.config_changes:
            self.loss_chart.add_marker(change.step)
        for alert in history.alerts:
            self.mark_alert(alert.step)
        if history.last_checkpoint is not None:
            stats.checkpoint_step = history.last_checkpoint.step
        self.stats_panel.show(stats)
        return stats

    def add_step(self, event: StepEvent) -> None:
        """A training step: its numbers, and a point on each chart."""
        self.stats.add_step(event)
        self.loss_chart.add_step(event.step, event.loss)
        self.lr_chart.add_step(event.step, event.lr)
        self.health_chart.add_step(event.step, event.grad_norm)

    def add_eval(self, event: EvalEvent) -> None:
        """An evaluation: its numbers, and its losses on the loss chart."""
        self.loss_chart.add_eval(event.step, event.train_loss, event.val_loss)
        self.stats.add_eval(event)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def compare(
        self, runs: list[Path], say: Callable[[str], None], done: Callable[[list[str]], None]
    ) -> None:
        """Draw other runs' val curves on the loss chart, read from their indexes (a run
        without one is indexed first, its progress said); done(names) once drawn."""
        worker = get_current_worker()
        curves = val_curves(runs, say, cancelled=lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.app.call_from_thread(self.loss_chart.set_overlays, curves)
            self.app.call_from_thread(done, list(curves))

    def mark_alert(self, step: int | None) -> None:
        """A red line at an alert's step, on the loss and the gradient-norm charts."""
        self.loss_chart.add_alert(step)
        self.health_chart.add_alert(step)

"""The row above the tabs: the loss chart (or the gradient-norm chart), with the table of
compared runs under it while there are some, the numbers and the learning rate. The app
feeds it every step and eval and binds it the state, the running config and the run
directory; it keeps the numbers, shows them on its own timer, and posts the step it shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.worker import get_current_worker

from minigpt.config import Config
from minigpt.events import EvalEvent, HelloHistory, StepEvent
from tui.charts import HealthChart, LearningRateChart, LossChart
from tui.compare import Compared, read_compared
from tui.compare_table import CompareTable, legend
from tui.stats import RunStats, StatsPanel
from tui.wording import per_step_ms

CONNECTING, LOST = "connecting", "engine lost"  # the dashboard's own states, without an engine
# The engine's states and those; each shows as a CSS class on the numbers (others show as
# they are).
STATES = {"idle", "running", "paused", "finished", "failed", CONNECTING, LOST}
STATS_SECONDS = 0.25  # numbers refresh at 4 Hz however fast steps arrive


class TopRow(Horizontal):
    """Charts and numbers of one run."""

    class Progress(Message):
        """The step the numbers show, and a step's time in ms (0: not known yet)."""

        def __init__(self, step: int, ms_per_step: float) -> None:
            """Carry the step and its time."""
            super().__init__()
            self.step = step
            self.ms_per_step = ms_per_step

    # Bound to the app's: the engine's state, the config it runs, and the run's folder.
    state: reactive[str] = reactive("")
    running: reactive[Config | None] = reactive(None)
    run_dir: reactive[Path] = reactive(Path())

    def __init__(self, **kwargs: Any) -> None:
        """Make the parts up front, so events can be drawn at any moment."""
        super().__init__(**kwargs)
        self.loss_chart = LossChart(id="loss")
        self.health_chart = HealthChart(id="health")
        self.stats_panel = StatsPanel(id="stats")
        self.lr_chart = LearningRateChart(id="lr")
        self.compare_table = CompareTable(id="compare-table")
        self.compared: list[Compared] = []  # the runs whose val curves are drawn
        self.stats = RunStats()
        self.stats_dirty = False  # numbers taken since they were last shown

    def compose(self) -> ComposeResult:
        """Loss and gradient-norm charts (one shows at a time) over the compared runs, then
        numbers over lr."""
        with Vertical(id="charts"):
            yield self.loss_chart
            yield self.health_chart
            yield self.compare_table
        with Vertical(id="side"):
            yield self.stats_panel
            yield self.lr_chart

    def on_mount(self) -> None:
        """Show the numbers, then refresh them a few times a second."""
        self.show_stats()
        self.set_interval(STATS_SECONDS, self.refresh_stats)

    def watch_state(self, old: str, new: str) -> None:
        """The state as the numbers' border title and CSS class."""
        if old in STATES:
            self.stats_panel.remove_class(f"-{old.replace(' ', '-')}")
        if new in STATES:
            self.stats_panel.add_class(f"-{new.replace(' ', '-')}")
        self.stats_panel.border_title = new  # the header may be cut short on a narrow terminal

    def watch_running(self, config: Config | None) -> None:
        """A new config in force (a hello, this or another client's change): its max_iters
        and grad_clip show at once."""
        if config is None:
            return
        self.stats.max_iters = config.train.max_iters
        self.health_chart.set_clip(config.train.grad_clip)
        self.show_stats()
        if self.compared:
            self.name_compared()

    def load(self, step: int | None, vocab_size: int | None, history: HelloHistory) -> None:
        """Start over from a hello (after its config is bound): its numbers, and the run's
        history on every chart."""
        train = self.running.train if self.running else None
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
        self.show_stats()

    def add_step(self, event: StepEvent) -> None:
        """A training step: its numbers, and a point on each chart."""
        self.stats.add_step(event)
        self.stats_dirty = True
        self.loss_chart.add_step(event.step, event.loss)
        self.lr_chart.add_step(event.step, event.lr)
        self.health_chart.add_step(event.step, event.grad_norm)

    def add_eval(self, event: EvalEvent) -> None:
        """An evaluation: its numbers, and its losses on the loss chart."""
        self.loss_chart.add_eval(
            event.step, event.train_loss, event.val_loss, event.tokens_seen, event.elapsed
        )
        self.stats.add_eval(event)
        self.stats_dirty = True

    def add_checkpoint(self, step: int | None) -> None:
        """model.ckpt was written at this step (the one a restart resumes from)."""
        self.stats.checkpoint_step = step
        self.stats_dirty = True

    def refresh_stats(self) -> None:
        """Show the latest numbers, at most a few times a second."""
        if self.stats_dirty:
            self.show_stats()

    def show_stats(self) -> None:
        """Show the numbers now, and post the step and its time for the app to pass down."""
        self.stats_dirty = False
        stats = self.stats
        self.stats_panel.show(stats)
        ms = stats.ms_per_step or per_step_ms(stats.train_seconds, stats.step)
        self.post_message(self.Progress(stats.step or 0, ms))

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def compare(
        self, runs: list[Path], say: Callable[[str], None], done: Callable[[list[Compared]], None]
    ) -> None:
        """Draw other runs' val curves on the loss chart, read from their indexes (a run
        without one is indexed first, its progress said), named by what differs; done(the
        runs) once drawn."""
        worker = get_current_worker()
        compared = read_compared(runs, say, cancelled=lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.app.call_from_thread(self.show_compared, compared)
            self.app.call_from_thread(done, compared)

    def show_compared(self, compared: list[Compared]) -> None:
        """Draw the compared runs' curves and the table under them (none: neither)."""
        self.compared = compared
        self.loss_chart.set_overlays({run.name: run.evals for run in compared})
        self.set_class(bool(compared), "-comparing")
        self.name_compared()

    def name_compared(self) -> None:
        """Name the compared runs by what differs from the running config, in the legend
        and the table."""
        self.loss_chart.set_labels({run.name: legend(self.running, run) for run in self.compared})
        self.compare_table.show(self.run_dir.resolve().name, self.running, self.compared)

    def mark_alert(self, step: int | None) -> None:
        """A red line at an alert's step, on the loss and the gradient-norm charts."""
        self.loss_chart.add_alert(step)
        self.health_chart.add_alert(step)

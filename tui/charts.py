"""The dashboard's charts: training loss, gradient norm, and the learning-rate schedule.

Charts hold their series and redraw on a timer, only when something changed,
from series thinned to the chart's width: drawing costs the same at step 100
and at step 100,000. The app sets data on them; they never ask for it.
"""

from __future__ import annotations

import math
from typing import Any

from textual.app import RenderResult
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from tui.series import Series, plottable

REDRAW_SECONDS = 0.5  # 2 Hz: smooth enough to watch, cheap enough to sit beside training
OVERLAY_COLORS = ["blue", "red", "yellow", "white"]  # other runs' val curves, in turn


def step_ticks(last: float, count: int = 5) -> list[float]:
    """Whole-number step ticks from 0 to last (plotext would print 21.2)."""
    top = max(1, int(last))
    return sorted({round(i * top / (count - 1)) for i in range(count)})


def add_line(lines: list[float], step: int | None) -> bool:
    """Keep a vertical line's step if a chart can place it; whether it was kept."""
    if not plottable(step):
        return False
    lines.append(step)
    return True


class TimedPlot(PlotextPlot):
    """A plot that redraws at most a few times a second, and only when marked dirty."""

    def __init__(self, **kwargs: Any) -> None:
        """Start clean; the first data marks it dirty."""
        super().__init__(**kwargs)
        self.dirty = True
        self.built: tuple[object, RenderResult] | None = None  # (size and theme, the drawing)

    def on_mount(self) -> None:
        """Start the redraw timer."""
        super().on_mount()
        self.set_interval(REDRAW_SECONDS, self.redraw_if_dirty)

    def on_resize(self) -> None:
        """A new width means a new number of points."""
        self.dirty = True

    def redraw_if_dirty(self) -> None:
        """Rebuild the plot if its data changed since the last redraw and it is on screen."""
        if not self.dirty or not self.display or not self.size.area:
            return
        self.dirty = False
        self.plt.clear_figure()
        self.draw_safely()
        self.built = None
        self.refresh()

    def draw_safely(self) -> None:
        """draw(); data plotext cannot place leaves an empty chart that says so, not a crash."""
        try:
            self.draw()
        except Exception as error:  # noqa: BLE001 - a chart must never take the dashboard down
            self.plt.clear_figure()
            self.plt.title(f"cannot draw: {type(error).__name__}")

    def render(self) -> RenderResult:
        """The drawing of the last redraw, built once per size and theme.

        plotext's build is not repeatable: it rescales the figure's data in place,
        so building twice on a log scale takes the log of a log (and fails below
        1). A new size or theme therefore redraws from the series first.
        """
        key = (self.size, self.app.theme)
        if self.built is None or self.built[0] != key:
            if self.built is not None:
                self.plt.clear_figure()
                self.draw_safely()
            try:
                drawing = super().render()
            except Exception as error:  # noqa: BLE001 - as in draw_safely
                self.plt.clear_figure()
                self.plt.title(f"cannot draw: {type(error).__name__}")
                drawing = super().render()
            self.built = (key, drawing)
        return self.built[1]

    def draw(self) -> None:
        """Describe the plot with self.plt (subclasses)."""


class LossChart(TimedPlot):
    """Train loss per step (smoothed), eval train/val points, and the loss at init."""

    log_scale: reactive[bool] = reactive(False)

    def __init__(self, **kwargs: Any) -> None:
        """Empty series."""
        super().__init__(**kwargs)
        self.train = Series(smoothing=0.9)
        self.eval_train = Series()
        self.eval_val = Series()
        self.markers: list[float] = []  # steps, where plotext draws a vertical line
        self.alerts: list[float] = []
        self.init_loss: float | None = None
        self.overlays: dict[str, Series] = {}  # other runs' val loss, by run name

    def reset(self, vocab_size: int | None) -> None:
        """Forget the history; the reference line is ln(vocab), a uniform guess's loss."""
        for series in (self.train, self.eval_train, self.eval_val):
            series.clear()
        self.markers.clear()
        self.alerts.clear()
        self.init_loss = None
        if isinstance(vocab_size, int) and 1 < vocab_size < 10**300:
            self.init_loss = math.log(vocab_size)
        self.dirty = True

    def add_step(self, step: int | None, loss: float | None) -> None:
        """One training step's loss."""
        self.train.add(step, loss)
        self.dirty = True

    def add_eval(self, step: int | None, train_loss: float | None, val_loss: float | None) -> None:
        """One estimate_loss result."""
        self.eval_train.add(step, train_loss)
        self.eval_val.add(step, val_loss)
        self.dirty = True

    def add_marker(self, step: int | None) -> None:
        """A vertical line where a config change took effect (none where the step is unknown)."""
        self.dirty |= add_line(self.markers, step)

    def add_alert(self, step: int | None) -> None:
        """A vertical line where a training alert was raised."""
        self.dirty |= add_line(self.alerts, step)

    def set_overlays(self, curves: dict[str, list[tuple[int, float]]]) -> None:
        """Other runs' val curves to draw beside this run's (replacing any shown)."""
        self.overlays = {}
        for name, points in curves.items():
            series = Series()
            for step, loss in points:
                series.add(step, loss)
            self.overlays[name] = series
        self.dirty = True

    def watch_log_scale(self) -> None:
        """Redraw with the new y scale."""
        self.dirty = True

    def draw(self) -> None:
        """Plot the series thinned to the chart's width."""
        plt = self.plt
        width = max(10, self.size.width - 10)  # columns left after the y axis labels
        # The key lives in the border: plotext's own legend breaks on small canvases.
        scale = " · log y" if self.log_scale else ""
        self.border_title = f"loss{scale}: [cyan]train[/] [orange1]val[/] [green]eval train[/]"
        overlays = [
            (name, series, OVERLAY_COLORS[i % len(OVERLAY_COLORS)])
            for i, (name, series) in enumerate(self.overlays.items())
        ]
        others = "".join(f" [{color}]{name}[/]" for name, _, color in overlays)
        self.border_subtitle = (
            f"[grey50]ln(vocab)[/] [magenta]config change[/] [red]alert[/]{others}"
        )
        if not self.train and not self.eval_val and not any(series for _, series, _ in overlays):
            plt.title("no steps yet")
            return
        if self.log_scale:
            plt.yscale("log")
        if self.init_loss is not None:
            plt.hline(self.init_loss, "gray")
        for step in self.markers:
            plt.vline(step, "magenta")
        for step in self.alerts:
            plt.vline(step, "red")
        if self.train:
            plt.plot(*self.train.thinned(width), marker="braille", color="cyan")
        for _, series, color in overlays:
            if series:
                plt.plot(*series.thinned(width), marker="braille", color=color)
        if self.eval_val:
            plt.scatter(*self.eval_val.thinned(width), marker="dot", color="orange")
            plt.scatter(*self.eval_train.thinned(width), marker="dot", color="green")
        ends = self.train.xs[-1:] + self.eval_val.xs[-1:]
        ends += [series.xs[-1] for _, series, _ in overlays if series]
        last = max(ends)
        plt.xticks(step_ticks(last))


class HealthChart(TimedPlot):
    """The gradient norm before clipping at each step, the clipping threshold, and alerts."""

    def __init__(self, **kwargs: Any) -> None:
        """An empty series."""
        super().__init__(**kwargs)
        self.norms = Series()
        self.clip: float | None = None  # train.grad_clip; None: no clipping
        self.alerts: list[float] = []

    def reset(self, grad_clip: float | None) -> None:
        """Forget the history (a new hello); draw the threshold at grad_clip."""
        self.norms.clear()
        self.alerts.clear()
        self.set_clip(grad_clip)

    def set_clip(self, grad_clip: float | None) -> None:
        """The clipping threshold in force (0 or None: none)."""
        self.clip = float(grad_clip) if plottable(grad_clip) and grad_clip > 0 else None
        self.dirty = True

    def add_step(self, step: int | None, grad_norm: float | None) -> None:
        """One step's gradient norm."""
        self.norms.add(step, grad_norm)
        self.dirty = True

    def add_alert(self, step: int | None) -> None:
        """A vertical line where a training alert was raised."""
        self.dirty |= add_line(self.alerts, step)

    def draw(self) -> None:
        """Plot the norms thinned to the chart's width, over the threshold."""
        plt = self.plt
        self.border_title = "gradient norm before clipping: [cyan]norm[/] [grey50]clip[/]"
        self.border_subtitle = "[red]alert[/] · h: back to the loss"
        if not self.norms:
            plt.title("no gradient norms yet")
            return
        if self.clip is not None:
            plt.hline(self.clip, "gray")
        for step in self.alerts:
            plt.vline(step, "red")
        plt.plot(*self.norms.thinned(max(10, self.size.width - 10)), marker="braille", color="cyan")
        plt.xticks(step_ticks(self.norms.xs[-1]))


class LearningRateChart(TimedPlot):
    """The learning rate actually used at each step: warmup, then the cosine."""

    def __init__(self, **kwargs: Any) -> None:
        """An empty series."""
        super().__init__(**kwargs)
        self.lr = Series()

    def reset(self) -> None:
        """Forget the history."""
        self.lr.clear()
        self.dirty = True

    def add_step(self, step: int | None, lr: float | None) -> None:
        """One step's learning rate."""
        self.lr.add(step, lr)
        self.dirty = True

    def draw(self) -> None:
        """Plot lr against step."""
        plt = self.plt
        self.border_title = "learning rate"
        if self.lr:
            plt.plot(
                *self.lr.thinned(max(10, self.size.width - 10)), marker="braille", color="yellow"
            )

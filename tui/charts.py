"""The dashboard's charts: training loss, gradient norm, and the learning-rate schedule.

Charts hold their series and redraw on a timer, only when something changed,
from series thinned to the chart's width: drawing costs the same at step 100
and at step 100,000. The app sets data on them; they never ask for it.
"""

from __future__ import annotations

import math
from typing import Any

from rich.markup import escape
from textual.app import RenderResult
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from minigpt.display import duration
from minigpt.events import EvalEvent
from tui.series import AXES, Curve, Series, plottable

REDRAW_SECONDS = 0.5  # 2 Hz: smooth enough to watch, cheap enough to sit beside training
OVERLAY_COLORS = ["blue", "red", "yellow", "white"]  # other runs' val curves, in turn
AXIS_TITLES = {"step": "", "tokens": " by tokens seen", "time": " by training time"}


def overlay_color(index: int) -> str:
    """The colour of the index-th other run's val curve (a name plotext and rich share)."""
    return OVERLAY_COLORS[index % len(OVERLAY_COLORS)]


def step_ticks(last: float, count: int = 5) -> list[float]:
    """Whole-number ticks from 0 to last (plotext would print 21.2)."""
    top = max(1, int(last))
    return sorted({round(i * top / (count - 1)) for i in range(count)})


def axis_ticks(last: float, axis: str) -> tuple[list[float], list[str]]:
    """Ticks from 0 to last, labelled as the axis reads: steps whole, tokens as 1.2M,
    training time as 3m05s."""
    ticks = step_ticks(last)
    if axis == "tokens":
        return ticks, [token_count(tick) for tick in ticks]
    if axis == "time":
        return ticks, [duration(tick) for tick in ticks]
    return ticks, [str(tick) for tick in ticks]


def token_count(count: float) -> str:
    """A count of tokens in three figures: 850, 12.5k, 1.2M, 3.4G."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= size:
            return f"{count / size:.3g}{suffix}"
    return f"{count:.0f}"


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
    """Train loss per step (smoothed), eval train/val points, other runs' val curves, and
    the loss at init, against steps, tokens seen or training time (`x_axis`)."""

    log_scale: reactive[bool] = reactive(False)
    x_axis: reactive[str] = reactive(AXES[0])

    def __init__(self, **kwargs: Any) -> None:
        """Empty series."""
        super().__init__(**kwargs)
        self.train = Series(smoothing=0.9)
        self.eval_train = Curve()
        self.eval_val = Curve()
        self.markers: list[float] = []  # steps, where plotext draws a vertical line
        self.alerts: list[float] = []
        self.init_loss: float | None = None
        self.overlays: dict[str, Curve] = {}  # other runs' val loss, by run name
        self.labels: dict[str, str] = {}  # the legend's name for each, by run name

    def reset(self, vocab_size: int | None) -> None:
        """Forget the history; the reference line is ln(vocab), a uniform guess's loss."""
        self.train.clear()
        self.eval_train.clear()
        self.eval_val.clear()
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

    def add_eval(
        self,
        step: int | None,
        train_loss: float | None,
        val_loss: float | None,
        tokens: int | None = None,
        seconds: float | None = None,
    ) -> None:
        """One estimate_loss result, at its step, tokens seen and training time."""
        self.eval_train.add(step, tokens, seconds, train_loss)
        self.eval_val.add(step, tokens, seconds, val_loss)
        self.dirty = True

    def add_marker(self, step: int | None) -> None:
        """A vertical line where a config change took effect (none where the step is unknown)."""
        self.dirty |= add_line(self.markers, step)

    def add_alert(self, step: int | None) -> None:
        """A vertical line where a training alert was raised."""
        self.dirty |= add_line(self.alerts, step)

    def set_overlays(self, runs: dict[str, list[EvalEvent]]) -> None:
        """Other runs' val curves to draw beside this run's (replacing any shown), named by
        their folders until set_labels names them."""
        self.overlays = {}
        for name, evals in runs.items():
            curve = self.overlays[name] = Curve()
            for event in evals:
                curve.add(event.step, event.tokens_seen, event.elapsed, event.val_loss)
        self.labels = {name: name for name in runs}
        self.dirty = True

    def set_labels(self, labels: dict[str, str]) -> None:
        """The legend's names of the other runs, by folder name."""
        self.labels = {name: labels.get(name, name) for name in self.overlays}
        self.dirty = True

    def watch_log_scale(self) -> None:
        """Redraw with the new y scale."""
        self.dirty = True

    def watch_x_axis(self) -> None:
        """Redraw against the new x."""
        self.dirty = True

    def draw(self) -> None:
        """Plot the series on the x axis chosen, thinned to the chart's width. The train line
        and the vertical lines are placed by step, so only the steps axis has them."""
        plt = self.plt
        axis = self.x_axis
        by_step = axis == AXES[0]
        width = max(10, self.size.width - 10)  # columns left after the y axis labels
        # The key lives in the border: plotext's own legend breaks on small canvases.
        scale = " · log y" if self.log_scale else ""
        train = "[cyan]train[/] " if by_step else ""
        self.border_title = (
            f"loss{AXIS_TITLES[axis]}{scale}: {train}[orange1]val[/] [green]eval train[/]"
        )
        overlays = [
            (escape(self.labels.get(name, name)), curve.on(axis), overlay_color(i))
            for i, (name, curve) in enumerate(self.overlays.items())
        ]
        others = "".join(f"[{color}]{label}[/] · " for label, _, color in overlays)
        marks = " [magenta]config change[/] [red]alert[/]" if by_step else ""
        self.border_subtitle = f"{others}[grey50]ln(vocab)[/]{marks}"
        train_line = self.train if by_step else Series()
        val, eval_train = self.eval_val.on(axis), self.eval_train.on(axis)
        if not train_line and not val and not any(series for _, series, _ in overlays):
            plt.title("no steps yet" if by_step else f"no evaluations{AXIS_TITLES[axis]} yet")
            return
        if self.log_scale:
            plt.yscale("log")
        if self.init_loss is not None:
            plt.hline(self.init_loss, "gray")
        for step in self.markers if by_step else []:
            plt.vline(step, "magenta")
        for step in self.alerts if by_step else []:
            plt.vline(step, "red")
        if train_line:
            plt.plot(*train_line.thinned(width), marker="braille", color="cyan")
        for _, series, color in overlays:
            if series:
                plt.plot(*series.thinned(width), marker="braille", color=color)
        if val:
            plt.scatter(*val.thinned(width), marker="dot", color="orange")
            plt.scatter(*eval_train.thinned(width), marker="dot", color="green")
        ends = train_line.xs[-1:] + val.xs[-1:]
        ends += [series.xs[-1] for _, series, _ in overlays if series]
        plt.xticks(*axis_ticks(max(ends), axis))


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

"""Loss series for charts: smoothed as they arrive, thinned to the chart's width.

A chart redraw must not cost more as a run grows: plotext redraws every point
it is given (about 24 ms at 500 points, 300 ms at 10,000). `Series` hands the
chart at most one point per column. Nor may the dashboard's memory grow with a
run it watches for days: past MAX_KEPT points, every other one goes (the first
and the last stay), so the whole curve is kept at half the density. A `Curve` is
evaluations' losses on each x axis the loss chart offers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeGuard

from minigpt.rundir.history_index import spread

MAX_KEPT = 8000  # points a series keeps (even, so halving keeps the last)
AXES = ("step", "tokens", "time")  # the loss chart's x axes, in the order `t` goes through them


def thin(xs: list[float], ys: list[float], points: int) -> tuple[list[float], list[float]]:
    """At most `points` evenly spaced samples of (xs, ys), always keeping the last."""
    if len(xs) <= points or points < 2:
        return xs, ys
    picks = spread(len(xs), points)
    return [xs[i] for i in picks], [ys[i] for i in picks]


@dataclass
class Series:
    """(x, y) points, optionally smoothed with a bias-corrected exponential average."""

    smoothing: float = 0.0  # 0 = raw; 0.9 = each point is 10% new value
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    _average: float = 0.0
    _weight: float = 0.0

    def add(self, x: float | None, y: float | None) -> None:
        """Append a point; one that is missing (null) or not a finite number is skipped."""
        if not (plottable(x) and plottable(y)):
            return
        x, y = float(x), float(y)
        # Bias correction (divide by the accumulated weight) keeps the first
        # points from being dragged towards zero.
        self._average = self.smoothing * self._average + (1 - self.smoothing) * y
        self._weight = self.smoothing * self._weight + (1 - self.smoothing)
        self.xs.append(x)
        self.ys.append(self._average / self._weight)
        if len(self.xs) > MAX_KEPT:
            del self.xs[1::2], self.ys[1::2]

    def clear(self) -> None:
        """Forget every point."""
        self.xs.clear()
        self.ys.clear()
        self._average = self._weight = 0.0

    def thinned(self, points: int) -> tuple[list[float], list[float]]:
        """The series at no more than `points` points."""
        return thin(self.xs, self.ys, points)

    def __len__(self) -> int:
        """Number of points."""
        return len(self.xs)


@dataclass
class Curve:
    """Evaluations' losses against their step, tokens seen and training time: a Series per
    axis, each point on the axes where its x is known."""

    by_axis: dict[str, Series] = field(default_factory=lambda: {axis: Series() for axis in AXES})

    def add(
        self, step: int | None, tokens: int | None, seconds: float | None, loss: float | None
    ) -> None:
        """One evaluation's loss, on each axis whose x it has."""
        for axis, x in zip(AXES, (step, tokens, seconds), strict=True):
            self.by_axis[axis].add(x, loss)

    def on(self, axis: str) -> Series:
        """The points on one axis."""
        return self.by_axis[axis]

    def clear(self) -> None:
        """Forget every point."""
        for series in self.by_axis.values():
            series.clear()

    def __len__(self) -> int:
        """Number of evaluations with a step and a loss."""
        return len(self.by_axis["step"])


def plottable(value: float | None) -> TypeGuard[float]:
    """Whether a chart can place this value (a float, not NaN or inf, nor past 1e300)."""
    return isinstance(value, (int, float)) and abs(value) < 1e300  # False for NaN

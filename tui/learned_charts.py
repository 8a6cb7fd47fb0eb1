"""The Learned view's two charts: loss by position in the context, and the embedding map.

Both hold what an eval recorded and redraw on TimedPlot's timer (tui/charts.py); the
pane sets their data. Every value may be None or NaN: such points are left out.
"""

from __future__ import annotations

import math
from typing import Any

from minigpt.display import number
from minigpt.learned.reading import shown_text
from tui.charts import TimedPlot

MAP_LABELS = 24  # the most frequent tokens the map names


def _finite(value: float | None) -> bool:
    """Whether value is a number a chart can place."""
    return value is not None and math.isfinite(value) and abs(value) < 1e300


class PositionChart(TimedPlot):
    """The val loss at each position of the context, now and at an earlier eval."""

    def __init__(self, **kwargs: Any) -> None:
        """No curves yet."""
        super().__init__(**kwargs)
        self.curves: list[tuple[str, list[float | None]]] = []  # (label, loss by position)

    def set_curves(self, curves: list[tuple[str, list[float | None]]]) -> None:
        """The curves to draw, the current eval's first."""
        self.curves = curves
        self.dirty = True

    def draw(self) -> None:
        """One line per curve over positions 1..T; the first in the accent colour."""
        plt = self.plt
        plt.title("val loss at each position of the context")
        plt.xlabel("position")
        for (label, losses), colour in zip(self.curves, ("orange", "gray"), strict=False):
            points = [(i + 1, v) for i, v in enumerate(losses) if _finite(v)]
            if points:
                xs, ys = zip(*points, strict=True)
                plt.plot(list(xs), list(ys), label=label, color=colour, marker="braille")


class MapChart(TimedPlot):
    """The token embeddings in two dimensions, the most frequent tokens named."""

    def __init__(self, **kwargs: Any) -> None:
        """No points yet."""
        super().__init__(**kwargs)
        self.points: list[tuple[str, float, float]] = []  # (token, x, y), most frequent first
        self.step: int | None = None

    def set_points(
        self, points: list[tuple[str, float | None, float | None]], step: int | None
    ) -> None:
        """The map of the eval at step (points that cannot be placed are left out)."""
        self.points = [
            (token, x, y)
            for token, x, y in points
            if x is not None and y is not None and _finite(x) and _finite(y)
        ]
        self.step = step
        self.dirty = True

    def draw(self) -> None:
        """Every token as a dot, the most frequent with their text."""
        plt = self.plt
        plt.title(f"token embeddings, 2 principal components (step {number(self.step, ',')})")
        if not self.points:
            return
        xs = [x for _, x, _ in self.points]
        ys = [y for _, _, y in self.points]
        plt.scatter(xs, ys, marker="dot", color="gray")
        for token, x, y in self.points[:MAP_LABELS]:
            plt.text(shown_text(token).strip() or token, x, y, color="orange")

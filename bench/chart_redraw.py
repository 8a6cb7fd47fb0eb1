"""Chart redraw time against the length of the run: it should not grow.

Mounts the dashboard's LossChart headless at 100x30, fills it with N logged
steps (and an eval every 100), and times what a redraw tick costs: draw()
(thinning the series to the chart's width) plus render() (plotext's build).

    python bench/chart_redraw.py [--steps 1000 100000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time

from textual.app import App, ComposeResult

from tui.charts import LossChart


class ChartApp(App[None]):
    """Just the loss chart."""

    def compose(self) -> ComposeResult:
        """One chart filling the screen."""
        yield LossChart()


async def redraw_ms(steps: int, repeat: int) -> float:
    """Median milliseconds for one redraw of a chart holding `steps` steps."""
    app = ChartApp()
    async with app.run_test(size=(100, 30)) as pilot:
        chart = app.query_one(LossChart)
        chart.reset(vocab_size=6337)
        for step in range(1, steps + 1):
            chart.add_step(step, 8.0 * math.exp(-step / steps) + 0.1 * math.sin(step))
            if step % 100 == 0:
                chart.add_eval(step, 8.0 * math.exp(-step / steps), 8.1 * math.exp(-step / steps))
        await pilot.pause()
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            chart.plt.clear_figure()
            chart.draw()
            chart.render()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    """Print the median redraw time for each run length, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 100000])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    results = {n: asyncio.run(redraw_ms(n, args.repeat)) for n in args.steps}
    for n, ms in results.items():
        print(f"{n:>8,} steps: {ms:6.1f} ms per redraw (median of {args.repeat})")
    first, last = results[args.steps[0]], results[args.steps[-1]]
    print(f"ratio {args.steps[-1]:,} / {args.steps[0]:,} steps: {last / first:.2f}")


if __name__ == "__main__":
    main()

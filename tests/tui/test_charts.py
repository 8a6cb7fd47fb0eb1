"""The loss chart on its own: log scale, resizing and repeated renders."""

from textual.app import App, ComposeResult

from tui.charts import LossChart


class ChartApp(App[None]):
    """Just the loss chart."""

    def compose(self) -> ComposeResult:
        """One chart filling the screen."""
        yield LossChart()


async def test_log_scale_survives_repeated_renders_and_resizes() -> None:
    """Losses below 1 on a log scale draw the same however often the chart is rendered."""
    app = ChartApp()
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one(LossChart)
        chart.reset(vocab_size=22)
        for step in range(1, 200):
            chart.add_step(step, 3.0 / step)  # falls well below 1
        chart.add_eval(100, 0.05, 0.06)
        chart.add_marker(50)
        chart.log_scale = True
        chart.redraw_if_dirty()
        first = chart.render()
        assert chart.render() is first  # built once, not rescaled again
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        resized = str(chart.render())
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert str(chart.render()) == str(first)
        assert "0.0" in resized or "e-" in resized  # y labels of losses below 1, not of logs

"""Chart series: smoothing and thinning to the chart's width."""

from tui.series import MAX_KEPT, Series, thin


def test_thin_keeps_at_most_the_width_and_both_ends() -> None:
    """10,000 points thin to the requested count, first and last kept."""
    xs: list[float] = list(range(10_000))  # a chart's x values: whole steps, typed as floats
    ys = [float(x) for x in xs]
    tx, ty = thin(xs, ys, 80)
    assert len(tx) == 80 and tx[0] == 0 and tx[-1] == 9_999
    assert ty == [float(x) for x in tx]
    assert thin(xs[:50], ys[:50], 80) == (xs[:50], ys[:50])


def test_smoothing_is_bias_corrected() -> None:
    """The first smoothed point equals the first value; a constant stays constant."""
    series = Series(smoothing=0.9)
    for step in range(1, 6):
        series.add(step, 4.0)
    assert series.ys == [4.0] * 5
    series.add(6, None)
    assert len(series) == 5


def test_smoothing_follows_a_drop_gradually() -> None:
    """After a jump the smoothed value moves part of the way."""
    series = Series(smoothing=0.5)
    series.add(1, 2.0)
    series.add(2, 0.0)
    assert 0.0 < series.ys[-1] < 2.0


def test_a_series_keeps_the_whole_curve_in_bounded_memory() -> None:
    """Past MAX_KEPT points every other one goes: first and last stay, order holds."""
    series = Series()
    for step in range(1, 5 * MAX_KEPT + 1):
        series.add(step, 1.0 / step)
    assert MAX_KEPT // 2 <= len(series) <= MAX_KEPT
    assert series.xs[0] == 1 and series.xs[-1] == 5 * MAX_KEPT
    assert series.xs == sorted(series.xs) and series.ys == [1.0 / x for x in series.xs]

"""Numbers as people read them, shared by the CLI and the dashboard."""

from __future__ import annotations

import math

UNKNOWN = "-"


def number(value: float | None, spec: str) -> str:
    """format(value, spec); a dash when unknown, NaN or inf as such, and a number too big
    for the format in scientific notation."""
    if value is None:
        return UNKNOWN
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    try:
        return format(value, spec)
    except (ValueError, OverflowError):  # e.g. an int past float's range for ".1f"
        return f"{value:.3e}" if abs(value) < 10**300 else "huge"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator as a float; None when either is unknown, the denominator
    is 0, or the result is not a finite float (values from the wire may be anything)."""
    if numerator is None or not denominator:
        return None
    try:
        result = numerator / denominator
    except (OverflowError, ZeroDivisionError, TypeError):
        return None
    return result if isinstance(result, float) and math.isfinite(result) else None


def duration(seconds: float | None) -> str:
    """Seconds as 1h02m, 3m05s or 42s; a dash when unknown or not a number."""
    if seconds is None or not abs(seconds) < 1e12:  # also NaN
        return UNKNOWN
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def byte_size(count: float) -> str:
    """A byte count as 812 KiB, 140 MiB or 3.2 GiB."""
    if count < 2**20:
        return f"{count / 2**10:,.0f} KiB"
    if count < 2**30:
        return f"{count / 2**20:,.0f} MiB"
    return f"{count / 2**30:,.1f} GiB"

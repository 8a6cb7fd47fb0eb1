"""Numbers as people read them, shared by the CLI and the dashboard."""

from __future__ import annotations

UNKNOWN = "-"


def number(value: float | None, spec: str) -> str:
    """format(value, spec), or a dash when unknown."""
    return UNKNOWN if value is None else format(value, spec)


def duration(seconds: float | None) -> str:
    """Seconds as 1h02m, 3m05s or 42s; a dash when unknown."""
    if seconds is None:
        return UNKNOWN
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"

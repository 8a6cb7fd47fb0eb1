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


def byte_size(count: float) -> str:
    """A byte count as 812 KiB, 140 MiB or 3.2 GiB."""
    if count < 2**20:
        return f"{count / 2**10:,.0f} KiB"
    if count < 2**30:
        return f"{count / 2**20:,.0f} MiB"
    return f"{count / 2**30:,.1f} GiB"

"""Numbers, probabilities and tokens as people read them, shared by the CLI and the dashboard.

Plain strings only (the dashboard styles them): widths are terminal cells, a
wide (East Asian) character taking two and a combining mark none, so columns
line up in any terminal.
"""

from __future__ import annotations

import math
import unicodedata

UNKNOWN = "-"
EIGHTHS = " ▏▎▍▌▋▊▉"  # a bar's last character, in eighths of a character


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


def setting(value: object) -> str:
    """A config value as a person writes it: 0.02, 3e-05, true, relu2."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def byte_size(count: float) -> str:
    """A byte count as 812 KiB, 140 MiB or 3.2 GiB."""
    if count < 2**20:
        return f"{count / 2**10:,.0f} KiB"
    if count < 2**30:
        return f"{count / 2**20:,.0f} MiB"
    return f"{count / 2**30:,.1f} GiB"


def probability_bar(fraction: float | None, width: int) -> str:
    """A bar `width` characters wide, filled to fraction (clamped to 0..1) in eighths of a
    character, then the fraction as a percentage ("  45.3%"); blank with a dash when
    unknown."""
    if fraction is None or not math.isfinite(fraction):
        return " " * width + f" {UNKNOWN:>6}"
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).ljust(width) + f" {fraction:6.1%}"


def cells(text: str) -> int:
    """How many terminal cells text takes."""
    return sum(map(_cells, text))


def _cells(c: str) -> int:
    """A character's terminal cells: none for a combining mark, two for a wide one."""
    if unicodedata.category(c)[0] == "M":
        return 0
    return 2 if unicodedata.east_asian_width(c) in "WF" else 1


def token_label(token: str, width: int, align: str = "<") -> str:
    """A readable token in exactly `width` cells: cut with "…" when longer, padded with
    spaces after it (align "<") or before it (align ">")."""
    if cells(token) > width:
        while token and cells(token) > width - 1:
            token = token[:-1]
        token += "…"
    pad = " " * (width - cells(token))
    return token + pad if align == "<" else pad + token

"""Whether the dashboard's terminal is still there.

A closed terminal usually reaches the dashboard as SIGHUP, which ends it. Not always:
under `make run` the session leader is make, which keeps the signal to itself while
it waits for the dashboard, and a terminal that hung up reads as endless end-of-file,
so Textual's input thread spins on it and the app never learns. The dashboard checks
instead, once a second, and detaches as an SSH drop would.
"""

from __future__ import annotations

import os
import sys

CHECK_SECONDS = 1.0  # how often the dashboard looks at its terminal


def terminal_fd() -> int | None:
    """The terminal the dashboard reads its keys from, or None when it runs without one
    (Textual's test harness, a pipe), where there is nothing to watch."""
    stdin = sys.__stdin__  # None where Python started without one
    if stdin is None:
        return None
    try:
        fd = stdin.fileno()
    except (ValueError, OSError):  # a stdin without a descriptor
        return None
    return fd if os.isatty(fd) else None


def terminal_gone(fd: int) -> bool:
    """Whether the terminal behind fd has hung up (a hung-up tty is no tty any more)."""
    return not os.isatty(fd)

"""Append-only JSON-lines files that lose no line to a full disk or a killed process, and
the one way they are read back.

metrics.jsonl and samples.jsonl are a run's history. A line that cannot be
written (disk full, quota, a read-only remount) stays in memory and is written
before the next one once the disk allows, so the file catches up without a
gap; the first failure of a streak is reported once, not every step (append returns the
notice; whoever writes passes it on). The piece
of a line that a filling disk cut short is truncated away, so the retry writes
the line once. A line torn by a killed process is ended with a newline before
anything else is appended, so it garbles only itself: readers skip it, and
resuming a run rewrites the file without it.

Every reader (status, the hello's history, resume's alerts, the index, the exports)
applies one rule, `usable`: a line, once ended by a newline, is an event of a kind its file
holds with a step that is a whole number SQLite can keep. Any other non-blank line (torn,
garbled, not UTF-8, JSON of another shape, an unknown event, a step missing or out of
range) is skipped, counted, and said once per file (`Skipped.note`). `Reading` reads a
file's last lines at a cost that does not grow with the file; only an export reads a
whole one.
"""

from __future__ import annotations

import errno
import json
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from minigpt.events import (
    AlertEvent,
    CheckpointEvent,
    ConfigAppliedEvent,
    EvalEvent,
    Event,
    LogEvent,
    SampleDoneEvent,
    StepEvent,
    decode,
)

MAX_PENDING = 100_000  # lines kept while the disk refuses them; older ones go first
BACKWARD_CHUNK = 1 << 16  # bytes read at a time when reading a file from its end
INT64 = 1 << 63  # SQLite's integers are 64-bit: a step beyond is no step

MetricsEvent = StepEvent | EvalEvent | ConfigAppliedEvent | AlertEvent | CheckpointEvent
# The events each file holds: any other kind in it is no usable line.
METRICS_EVENTS: tuple[type[MetricsEvent], ...] = (
    StepEvent,
    EvalEvent,
    ConfigAppliedEvent,
    AlertEvent,
    CheckpointEvent,
)
SAMPLES_EVENTS: tuple[type[SampleDoneEvent], ...] = (SampleDoneEvent,)
E = TypeVar("E", bound=Event)


def usable(line: bytes, kinds: tuple[type[E], ...]) -> E | None:
    """The event a line holds when it is one of `kinds` (those its file holds) with a step
    that is a whole number SQLite can keep; None for any other line, which is skipped."""
    event = decode(line)
    if not isinstance(event, kinds):
        return None
    step = getattr(event, "step", None)
    if not isinstance(step, int) or not -INT64 <= step < INT64:
        return None
    return event


def unreadable(count: int) -> str:
    """'1 unreadable line', '3 unreadable lines'."""
    return f"{count} unreadable line{'s' * (count != 1)}"


@dataclass
class Skipped:
    """The lines of one file that a reader could not use: counted, and said once."""

    path: Path
    count: int = 0
    first: int | None = None  # the first one's line number, when read from the file's start
    among: int | None = None  # the lines read, when only the file's end was

    def note(self) -> str | None:
        """The one line that says what was skipped, or None when nothing was."""
        if not self.count:
            return None
        if self.among is not None:
            return f"{self.path}: {unreadable(self.count)} among its last {self.among} skipped"
        return f"{self.path}: {unreadable(self.count)} skipped (the first is line {self.first})"


class Reading(Generic[E]):
    """The usable events of a .jsonl file, oldest first, read as they are iterated: the
    last `last` non-blank lines, or (last None: for an export) every line. What was
    skipped is in `skipped` once iterated; a missing or unreadable file has no lines."""

    def __init__(self, path: Path, kinds: tuple[type[E], ...], last: int | None = None) -> None:
        """Refer to the file (nothing is read until iterated)."""
        self.path = path
        self.kinds = kinds
        self.last = last
        self.skipped = Skipped(path)

    def __iter__(self) -> Iterator[E]:
        """Each usable event; each other line counted in `skipped` (afresh on each pass)."""
        self.skipped = skipped = Skipped(self.path, among=None if self.last is None else 0)
        numbered: Iterator[tuple[int | None, bytes]]
        if self.last is None:
            numbered = _lines(self.path)
        else:
            numbered = ((None, line) for line in _last_lines(self.path, self.last))
        for number, line in numbered:
            if skipped.among is not None:
                skipped.among += 1
            event = usable(line, self.kinds)
            if event is not None:
                yield event
                continue
            skipped.count += 1
            if skipped.first is None:
                skipped.first = number


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line of a file; bytes after the last newline
    (a line being written, or torn) are no line yet. Nothing if the file is missing or
    unreadable."""
    try:
        with open(path, "rb") as f:
            for number, line in enumerate(f, start=1):
                if line.endswith(b"\n") and line.strip():
                    yield number, line
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return


def _last_lines(path: Path, count: int, max_bytes: int = 64 << 20) -> list[bytes]:
    """The last `count` non-blank lines of a file, oldest first, read backwards from its end
    and no further than `max_bytes`: the cost depends on `count`, not on the file's length.
    Bytes after the last newline are no line yet, as above."""
    found: list[bytes] = []  # newest first
    try:
        with open(path, "rb") as f:
            position = f.seek(0, os.SEEK_END)
            floor = max(0, position - max_bytes)
            carry: bytes | None = None  # the start of a line the next chunk back completes
            while position > floor and len(found) < count:
                size = min(BACKWARD_CHUNK, position - floor)
                position -= size
                f.seek(position)
                pieces = f.read(size).split(b"\n")
                if carry is None:  # nothing after the last newline counts
                    if len(pieces) == 1:
                        continue
                    pieces.pop()
                    carry = b""
                pieces[-1] += carry
                carry = pieces.pop(0)
                found += [line for line in reversed(pieces) if line.strip()]
            if position == 0 and carry and carry.strip():  # the file's first line, whole
                found.append(carry)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return []
    return found[:count][::-1]


class Journal:
    """One append-only .jsonl file, written line by line with retry."""

    def __init__(self, path: Path) -> None:
        """Refer to path (nothing is opened yet)."""
        self.path = path
        self.pending: deque[bytes] = deque(maxlen=MAX_PENDING)
        self.fd: int | None = None
        self.failing = False

    def append(self, record: dict[str, Any]) -> LogEvent | None:
        """Write one record as a line (and any lines still pending before it); the notice
        of the first failure of a streak ("error") or of the recovery ("info"), else None."""
        self.pending.append((json.dumps(record, ensure_ascii=False) + "\n").encode())
        try:
            self._write_pending()
        except OSError as error:
            first, self.failing = not self.failing, True
            if not first:
                return None
            return LogEvent(
                "error",
                f"cannot write {self.path.name} ({error.strerror or error}); its new lines "
                "are kept in memory and written once the disk allows",
            )
        if not self.failing:
            return None
        self.failing = False
        return LogEvent("info", f"{self.path.name} is being written again; no line was lost")

    def _write_pending(self) -> None:
        """Write the pending lines in order; OSError leaves the unwritten ones pending."""
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            self._end_torn_line()  # e.g. the process that wrote it last was killed mid-line
        elif self.failing:
            self._end_torn_line()
        while self.pending:
            line = self.pending[0]
            written = os.write(self.fd, line)
            if written < len(line):  # the disk filled up mid-line: take the piece back
                # Ending the piece with a newline instead would make a whole line of one cut
                # just before its newline, and the retry would then write that line twice.
                os.ftruncate(self.fd, os.fstat(self.fd).st_size - written)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.pending.popleft()

    def _end_torn_line(self) -> None:
        """Add a newline when the file ends inside a line."""
        assert self.fd is not None
        size = os.fstat(self.fd).st_size
        if size and os.pread(self.fd, 1, size - 1) != b"\n":
            os.write(self.fd, b"\n")

    def close(self) -> None:
        """Close the file (lines still pending are lost with the process)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

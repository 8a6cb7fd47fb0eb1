"""Append-only JSON-lines files that lose no line to a full disk or a killed process.

metrics.jsonl and samples.jsonl are a run's history. A line that cannot be
written (disk full, quota, a read-only remount) stays in memory and is written
before the next one once the disk allows, so the file catches up without a
gap; the first failure of a streak is reported once, not every step (append returns the
notice; whoever writes passes it on). The piece
of a line that a filling disk cut short is truncated away, so the retry writes
the line once. A line torn by a killed process is ended with a newline before
anything else is appended, so it garbles only itself: readers skip it, and
resuming a run rewrites the file without it.
"""

from __future__ import annotations

import errno
import json
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from minigpt.events import LogEvent

MAX_PENDING = 100_000  # lines kept while the disk refuses them; older ones go first
BACKWARD_CHUNK = 1 << 16  # bytes read at a time when reading a file from its end


NOT_JSON = object()  # what read_lines gives for a line that does not parse


def read_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON value) of each non-blank line of a .jsonl file, NOT_JSON for
    a torn or garbled one (bytes that are not UTF-8 read as replacement characters);
    nothing if the file is missing or unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    yield number, _parsed(line)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return


def _parsed(line: str) -> Any:
    """One line's JSON value, or NOT_JSON."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return NOT_JSON


def read_last_lines(path: Path, count: int, max_bytes: int = 64 << 20) -> list[Any]:
    """The parsed JSON values (NOT_JSON for a garbled one) of the last `count` non-blank
    lines of a .jsonl file, oldest first, read backwards from its end and no further than
    `max_bytes`: the cost depends on `count`, not on the file's length. Bytes after the
    last newline (a line being written, or torn) are no line yet."""
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
    return [_parsed(line.decode("utf-8", "replace")) for line in reversed(found[:count])]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a .jsonl file, skipping torn or garbled lines; [] if missing."""
    return [record for _, record in read_lines(path) if isinstance(record, dict)]


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

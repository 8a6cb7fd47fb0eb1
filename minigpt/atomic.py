"""Replacing a file whole or not at all: the one way minigpt writes a file over another.

Contract:
- `write_atomic(path, write)` calls `write` on a temporary sibling of path,
  ".NAME.PID.tmp" in the same folder (so the rename stays on one filesystem,
  and `RunDir.remove_temporaries` finds what a killed process left), fsyncs it,
  then renames it over path: a reader sees the old file or the new one, never
  half of one, and a crash or a full disk mid-write leaves the old file whole.
- With durable=True the folder is fsynced after the rename as well, so the new
  file survives a power cut too (checkpoints); without, the rename may be lost,
  which costs a config or cache file nothing that cannot be redone.
- Whatever `write` or the disk raises propagates unchanged, the temporary file
  removed first; callers turn it into their own error message. The new file's
  mode is the default one (umask), as `open` makes it.
- `write_folder_atomic(path, write)` does the same for a whole folder (an export):
  `write` fills a temporary sibling folder, which is then renamed to path. path may
  be an empty folder, which it replaces; a folder with anything in it is never
  replaced. A failure removes the temporary folder and the parents the call made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")


def write_atomic(path: Path, write: Callable[[IO[bytes]], T], *, durable: bool = False) -> T:
    """Replace path with what write(file) writes; write's result, or its error with no temp left."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as f:
            result = write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
        if durable:
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except BaseException:  # a KeyboardInterrupt mid-write leaves no temporary file either
        with contextlib.suppress(OSError):  # e.g. the folder itself is gone: nothing to remove
            temp.unlink(missing_ok=True)
        raise
    return result


def write_text_atomic(path: Path, text: str) -> None:
    """Replace path's content with text (UTF-8) as write_atomic does; OSError propagates."""
    data = text.encode("utf-8")
    write_atomic(path, lambda f: f.write(data))


def write_folder_atomic(path: Path, write: Callable[[Path], T]) -> T:
    """Make the folder path with what write(folder) puts in a temporary folder; write's
    result, or its error with nothing left behind (see the module docstring)."""
    path = Path(os.path.abspath(path))
    made = [parent for parent in path.parents if not parent.exists()]  # deepest first
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(temp, ignore_errors=True)  # a killed export of this pid's
        temp.mkdir()
        result = write(temp)
        os.replace(temp, path)  # refuses (OSError) a path that is a file or holds anything
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        for parent in made:
            with contextlib.suppress(OSError):  # not empty: someone else is using it now
                parent.rmdir()
        raise
    return result

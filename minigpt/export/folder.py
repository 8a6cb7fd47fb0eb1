"""What every export shares: the optional packages it needs, and the folder it makes.

Contract:
- `needs_extra(*modules)` imports the export extra's packages on demand, so nothing that
  the engine, the command line or the dashboard imports at start loads them; a missing
  one raises ExportError naming the extra to install.
- `check_destination(out)` refuses, before any work, a folder that holds anything, a path
  that is a file or lies under one, and a folder this user cannot write in;
  `write_export(out, write)` then makes the folder whole or not at
  all (atomic.write_folder_atomic), any OSError becoming one ExportError line.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from minigpt.atomic import write_folder_atomic
from minigpt.errors import ExportError


def install_command() -> str:
    """The one command that installs the [export] extra where this minigpt runs: into this
    interpreter's environment (the project's .venv for `make run`), from the source checkout
    this minigpt was imported from, else from the package index."""
    root = Path(__file__).resolve().parents[2]
    python = sys.executable or "python3"
    if (root / "pyproject.toml").is_file():
        return f"{python} -m pip install -e '{root}[export]'"
    return f"{python} -m pip install 'minigpt-tui[export]'"


def needs_extra(*modules: str) -> list[ModuleType]:
    """The named modules of the [export] extra, imported; ExportError when one is missing."""
    try:
        return [importlib.import_module(name) for name in modules]
    except ImportError as error:
        missing = error.name or str(error)
        raise ExportError(
            f"exporting needs the [export] extra ({missing} is not installed): {install_command()}"
        ) from None


def check_destination(out: str | os.PathLike[str]) -> Path:
    """out as a Path an export may create; ExportError if it is a file, a non-empty folder,
    or under a file or a folder this user cannot write."""
    path = Path(out)
    if path.is_dir() and any(path.iterdir()):
        raise ExportError(f"{path} is not empty; export into a new or empty folder")
    if path.exists() and not path.is_dir():
        raise ExportError(f"{path} is a file; export into a new or empty folder")
    above = next(p for p in Path(os.path.abspath(path)).parents if p.exists())
    if not above.is_dir():
        raise ExportError(f"cannot write {path}: {above} is a file")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {path}: {above} is not writable")
    return path


def write_export(out: Path, write: Callable[[Path], None]) -> Path:
    """Make the folder out with what write(folder) puts in it, whole or not at all."""
    try:
        write_folder_atomic(out, write)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ExportError(f"cannot write {out}: {reason}; nothing was exported") from None
    return out

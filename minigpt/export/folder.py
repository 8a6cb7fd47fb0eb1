"""What every export shares: the packages it needs, and the folder it makes.

Contract:
- `needs_extra(*modules)` imports an export's packages on demand, so nothing that the
  engine, the command line or the dashboard imports at start loads them. A missing one
  raises ExportError with the one command that mends it: TensorBoard's packages are the
  [export] extra, to install; --hf's (transformers, tokenizers, safetensors) are default
  dependencies, so one missing is a broken install, to install again.
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

# The modules only the [export] extra brings (pyproject.toml); every other module an export
# imports comes with minigpt-tui itself.
EXTRA_MODULES = ("tensorboard", "torch.utils.tensorboard")


def install_command(extra: str | None = None) -> str:
    """The one command that installs minigpt-tui, with extra if given, where this minigpt
    runs: into this interpreter's environment (the project's .venv for `make run`), from the
    source checkout this minigpt was imported from, else from the package index."""
    root = Path(__file__).resolve().parents[2]
    python = sys.executable or "python3"
    suffix = f"[{extra}]" if extra else ""
    if (root / "pyproject.toml").is_file():
        return f"{python} -m pip install -e '{root}{suffix}'"
    return f"{python} -m pip install 'minigpt-tui{suffix}'"


def needs_extra(*modules: str) -> list[ModuleType]:
    """The named modules, imported; ExportError saying how to install one that is missing."""
    imported = []
    for name in modules:
        try:
            imported.append(importlib.import_module(name))
        except ImportError as error:
            missing = error.name or str(error)
            if name in EXTRA_MODULES:
                raise ExportError(
                    f"exporting needs the [export] extra ({missing} is not installed): "
                    f"{install_command('export')}"
                ) from None
            raise ExportError(
                f"{missing} is not installed, though minigpt-tui installs it by default; "
                f"install minigpt-tui again: {install_command()}"
            ) from None
    return imported


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

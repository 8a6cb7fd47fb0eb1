"""The outside programs the end-to-end tests drive: skip without them, unless on CI."""

import os
import shutil
from pathlib import Path

import pytest


def require_tool(name: str, package: str, path: Path | None = None) -> str:
    """The tool's path: found on PATH, or at `path` for one kept off it (sshd).

    Missing, the test is skipped with the apt package to install, except where the
    CI variable is "true": there a missing tool fails the test instead, so CI never
    passes with the end-to-end tests quietly left out.
    """
    found = shutil.which(str(path) if path else name)  # a path is checked as it is
    if found:
        return found
    where = f" at {path}" if path else ""
    message = f"{name} not found{where}: apt-get install {package}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)

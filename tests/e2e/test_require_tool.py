"""require_tool: a missing tool skips the test, or fails it on CI."""

import sys
from pathlib import Path

import pytest

from tests.e2e.tools import require_tool

MISSING = "minigpt-no-such-tool"


@pytest.mark.parametrize("ci", [None, "false", "1"])
def test_missing_tool_skips_with_how_to_install(monkeypatch: pytest.MonkeyPatch, ci) -> None:
    """Off CI (CI unset or anything but "true") the test is skipped, naming the package."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match=f"^{MISSING} not found: apt-get install pkg$"):
        require_tool(MISSING, "pkg")


def test_missing_tool_fails_on_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With CI=true the same message fails the test, on PATH or at a given path."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"^{MISSING} not found: apt-get install pkg$"):
        require_tool(MISSING, "pkg")
    absent = tmp_path / "sbin" / MISSING
    with pytest.raises(pytest.fail.Exception, match=f"not found at {absent}: apt-get install"):
        require_tool(MISSING, "pkg", absent)


def test_present_tool_is_returned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A tool on PATH, or executable at its path, is returned; a file that cannot run is not."""
    monkeypatch.setenv("CI", "true")
    tool = tmp_path / MISSING
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert require_tool(MISSING, "pkg") == str(tool)
    assert require_tool("anything", "pkg", Path(sys.executable)) == sys.executable
    not_executable = tmp_path / "plain-file"
    not_executable.write_text("")
    with pytest.raises(pytest.fail.Exception, match="not found at"):
        require_tool("plain-file", "pkg", not_executable)

"""Engines forked from a warm interpreter: a test's engine without ~1.7 s of imports.

`Client.spawn` starts `python -m minigpt engine ...`, a fresh interpreter whose
imports (torch, and torch._dynamo pulled in by the optimizer) are most of its start.
Here one interpreter does those imports once and forks a copy per engine, which runs
the same `main()` as the real command (arguments, run dir, lock, socket, signals,
exit code) in a session of its own, with its output in the run's engine.log. The
copy is made the test process's own child (Linux's child subreaper), so tests wait
on it, signal it and read its exit code as they would a subprocess.Popen.

Only the interpreter's start is skipped: the e2e tests and the CLI tests still start
real `minigpt` processes.

Adopting the copy takes `os.pidfd_open` and prctl's PR_SET_CHILD_SUBREAPER (Linux 5.3
and later). Where either is missing or refused (macOS, older kernels, a libc without
prctl), or MINIGPT_NO_FORK_SERVER=1 is set, there is no warm interpreter: engines
start the ordinary way, `Client.spawn` running `python -m minigpt engine ...` itself.
"""

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
from types import ModuleType, SimpleNamespace
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

SERVER = r"""
import json, os, sys
import torch
import minigpt.cli.commands  # what an engine's command loads (cli.py loads it lazily)
from minigpt.cli.main import main
torch.optim.AdamW(torch.nn.Linear(1, 1).parameters())  # imports torch._dynamo, as engines do
os.write(1, b"ready\n")
for line in sys.stdin:
    request = json.loads(line)
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read)
        engine = os.fork()
        if engine == 0:
            break  # the engine: on to the code after the loop
        os.write(write, str(engine).encode())
        os._exit(0)  # orphans the engine, so the test process adopts it
    os.close(write)
    os.waitpid(middle, 0)
    pid = os.read(read, 32)
    os.close(read)
    os.write(1, pid + b"\n")
else:
    sys.exit(0)
os.close(write)
os.setsid()
os.environ.clear()
os.environ.update(request["env"])
os.chdir(request["cwd"])
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
os.dup2(log, 1)
os.dup2(log, 2)
os.close(log)
sys.exit(main(request["args"]))
"""


def supported() -> bool:
    """Whether engines can be forked warm here: pidfd_open and the child subreaper work,
    and MINIGPT_NO_FORK_SERVER=1 does not ask for plain starts."""
    if os.environ.get("MINIGPT_NO_FORK_SERVER") == "1":
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))  # OSError (ENOSYS) before Linux 5.3
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(ctypes.c_int()), 0, 0, 0) == 0
    except (OSError, AttributeError):  # AttributeError: no os.pidfd_open, or no prctl
        return False


class Adopted:
    """A forked engine, now this process's child, with the Popen calls tests make."""

    def __init__(self, pid: int) -> None:
        """Watch pid (a pidfd turns readable when it exits)."""
        self.pid = pid
        self.returncode: int | None = None
        self._exited = os.pidfd_open(pid)

    def wait(self, timeout: float | None = None) -> int:
        """The exit code, like Popen's (-N when killed by signal N)."""
        if self.returncode is None:
            if not select.select([self._exited], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"engine pid {self.pid}", timeout or 0)
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            os.close(self._exited)
        return self.returncode

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, signum: int) -> None:
        """Signal the engine unless it has been reaped (its pid may be reused then)."""
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        """kill -9."""
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The warm interpreter, and the Popen stand-in that asks it for engines; where it is
    not `supported()`, no interpreter, and engines start as plain subprocesses."""

    def __init__(self) -> None:
        """Start the interpreter and wait until it has imported everything, if supported."""
        self.server: subprocess.Popen[bytes] | None = None
        if not supported():
            return
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.server = subprocess.Popen(
            [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.server.stdout is not None, "stdout=PIPE gives the server a stdout"
        assert self.server.stdout.readline() == b"ready\n", "the fork server did not start"

    def popen(self, command: list[str], **kwargs: Any) -> subprocess.Popen[Any] | Adopted:
        """Fork `python -m minigpt ...` with its output in the log file given as stdout;
        anything else runs as asked (kwargs are Popen's, passed on as they came)."""
        log = getattr(kwargs.get("stdout"), "name", None)
        if command[1:3] != ["-m", "minigpt"] or not isinstance(log, str):
            return subprocess.Popen(command, **kwargs)
        server = self.server
        assert server is not None, "popen is handed out only when the warm interpreter runs"
        assert server.stdin is not None and server.stdout is not None, "both are PIPEs"
        request = {"args": command[3:], "log": log, "env": dict(os.environ), "cwd": os.getcwd()}
        self._subreaper(True)
        try:
            server.stdin.write((json.dumps(request) + "\n").encode())
            server.stdin.flush()
            pid = server.stdout.readline()
        finally:
            self._subreaper(False)
        assert pid.strip().isdigit(), "the fork server died"
        return Adopted(int(pid))

    def _subreaper(self, on: bool) -> None:
        """Make orphaned descendants (the forked engine) this process's children, or stop."""
        if self.libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")

    def subprocess_module(self) -> SimpleNamespace | ModuleType:
        """The subprocess module as minigpt.service.client should see it: Popen forks engines
        (or, without the warm interpreter, the real module)."""
        if self.server is None:
            return subprocess
        return SimpleNamespace(**{**vars(subprocess), "Popen": self.popen})

    def close(self) -> None:
        """Let the interpreter exit (engines it forked are not its children any more)."""
        if self.server is None:
            return
        assert self.server.stdin is not None and self.server.stdout is not None, "both are PIPEs"
        self.server.stdin.close()
        self.server.wait(30)
        self.server.stdout.close()

"""The dashboard's line to its engine: attach to a live one, or start one detached.

`Link` is what the app needs of that line; `EngineLink` is the real one, and
the tests' `ScriptedLink` plays events without an engine. `open()` runs in the
dashboard's worker thread (starting an engine takes seconds: torch,
tokenizing); `send()` is called from the UI thread.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from minigpt.atomic import write_text_atomic
from minigpt.cli.options import overrides_with_data
from minigpt.config import load_config
from minigpt.errors import EngineError
from minigpt.events import Event
from minigpt.rundir.layout import RunDir, RunLock, next_run_dir
from minigpt.service.client import Client

CONFIG_NAME = "config.toml"  # a new run's config, in its run directory


def make_next_run(run_dir: Path, config_text: str) -> Path:
    """The run directory after run_dir, made, with config_text as its config.toml;
    OSError leaves nothing behind."""
    new = next_run_dir(run_dir)
    RunDir(new).create()
    try:
        write_text_atomic(new / CONFIG_NAME, config_text)
    except OSError:
        shutil.rmtree(new, ignore_errors=True)  # made just now: nothing of the user's in it
        raise
    return new


class Connection(Protocol):
    """An open line to an engine: its hello, then its events."""

    @property
    def hello(self) -> Event:
        """What the engine said on connecting."""
        ...

    def next_event(self, timeout: float) -> Event | None:
        """The next event, or None when none arrives within timeout seconds."""
        ...


class Link(Protocol):
    """What the dashboard needs of its line to an engine."""

    run_dir: Path
    config_file: str | None  # the --config given, if any

    def open(self, status: Callable[[str], None], cancelled: Callable[[], bool]) -> Connection:
        """Connect (or start the engine), reporting progress through status."""
        ...

    def send(self, cmd: str, **args: Any) -> str | None:
        """Send a command: its id, or None when there is no engine to send to."""
        ...

    def close(self) -> None:
        """Drop the connection (the engine keeps running)."""
        ...

    def restart(self) -> None:
        """The next open() starts a new engine (resuming from a checkpoint if there is one)."""
        ...

    def new_run(self, config_text: str) -> Path:
        """Stop this run's engine and point at a new run directory that trains config_text.

        OSError when the directory or its config cannot be written; nothing is stopped then.
        """
        ...


class EngineLink:
    """How to reach one run's engine, and the connection once made."""

    def __init__(
        self,
        run_dir: Path,
        engine_args: Sequence[str] = (),
        attach_only: bool = False,
        config_file: str | None = None,
    ):
        """Describe the run; nothing connects until open(). config_file: the --config given."""
        self.run_dir = run_dir
        self.engine_args = list(engine_args)
        self.attach_only = attach_only
        self.config_file = config_file
        self.client: Client | None = None
        self._send_lock = threading.Lock()

    @classmethod
    def from_options(
        cls,
        run_dir: Path,
        config: str | None = None,
        data: str | None = None,
        overrides: Sequence[str] = (),
        attach_only: bool = False,
    ) -> EngineLink:
        """Check the config here (fast, no torch) and build the engine's arguments."""
        all_overrides = overrides_with_data(data, overrides)
        resuming = RunDir(run_dir).model_ckpt.exists()
        if not attach_only and not resuming:
            load_config(config, all_overrides)  # raises ConfigError before any UI appears
        args = ["--config", config] if config else []
        args += [flag for pair in all_overrides for flag in ("--set", pair)]
        if resuming:
            args.append("--resume")
        return cls(run_dir, args, attach_only, config)

    def open(self, status: Callable[[str], None], cancelled: Callable[[], bool]) -> Client:
        """Attach to the run's live engine, or start one; report progress through status.

        EngineError says why neither worked, naming the path when the run directory
        cannot be made or written."""
        self.close()  # a connection left by a cancelled worker
        try:
            if self.attach_only or RunLock(RunDir(self.run_dir)).holder() is not None:
                status(f"attaching to the engine of {self.run_dir}")
                self.client = Client.connect(self.run_dir)
            else:
                status(f"starting an engine for {self.run_dir} (loading torch and the corpus)")
                self.client = Client.spawn(
                    self.run_dir, self.engine_args, cancelled=cancelled, progress=status
                )
        except OSError as error:
            where = error.filename or self.run_dir
            raise EngineError(f"cannot use {where}: {error.strerror or error}") from None
        return self.client

    def restart(self) -> None:
        """A new engine after this one died: resume when a checkpoint exists."""
        args = [a for a in self.engine_args if a != "--resume"]
        try:
            resumable = RunDir(self.run_dir).model_ckpt.exists()
        except OSError:  # a path the system refuses: open() will say so
            resumable = False
        self.engine_args = [*args, "--resume"] if resumable else args
        self.attach_only = False

    def new_run(self, config_text: str) -> Path:
        """Write config_text into the next run directory, then stop this run's engine
        (it saves first) and point there."""
        new = make_next_run(self.run_dir, config_text)
        self.send("shutdown")
        self.close()
        self.run_dir = new
        self.engine_args = ["--config", str(new / CONFIG_NAME)]
        self.attach_only = False
        return new

    def send(self, cmd: str, **args: Any) -> str | None:
        """Send a command if connected: its id, or None when there is no engine to send to."""
        if self.client is None:
            return None
        try:
            with self._send_lock:
                return self.client.send(cmd, **args)
        except OSError:
            return None

    def close(self) -> None:
        """Drop the connection (the engine keeps running)."""
        if self.client is not None:
            self.client.close()
            self.client = None

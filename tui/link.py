"""The dashboard's line to its engine: attach to a live one, or start one detached.

`EngineLink.open()` runs in the dashboard's worker thread (starting an engine
takes seconds: torch, tokenizing); `send()` is called from the UI thread.
Events read by the worker wait in `pending` until the UI drains them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from minigpt.client import Client
from minigpt.config import load_config
from minigpt.errors import EngineError
from minigpt.events import Event
from minigpt.options import overrides_with_data
from minigpt.rundir import RunDir, RunLock


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
        self.pending: deque[Event] = deque()
        self.notified = threading.Event()  # set while an EventsWaiting is on its way
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

    def restart_args(self) -> list[str]:
        """Arguments for a new engine after this one died: resume when a checkpoint exists."""
        args = [a for a in self.engine_args if a != "--resume"]
        try:
            resumable = RunDir(self.run_dir).model_ckpt.exists()
        except OSError:  # a path the system refuses: open() will say so
            resumable = False
        return [*args, "--resume"] if resumable else args

    def retarget(self, run_dir: Path, config_file: Path) -> None:
        """Point at a new run directory whose engine starts from config_file (call close first)."""
        self.run_dir = run_dir
        self.engine_args = ["--config", str(config_file)]
        self.attach_only = False

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

"""The run directory: where one training run keeps everything it needs.

    runs/NAME/
      config.toml     the resolved configuration (rewritten when a change applies)
      metrics.jsonl   every step/eval/checkpoint event, one JSON object a line
      history.sqlite  metrics.jsonl indexed, so a run opens as fast at any length
      samples.jsonl   prompts and completions, with the step they came from
      model.ckpt      latest checkpoint;  best.ckpt  lowest val loss so far
      engine.sock     the control socket while an engine is alive
      engine.lock     held by the live engine: a second one refuses to start
      engine.log      what a detached engine printed

The folder is private to its owner (mode 0700): it will also hold the control
socket of a live run. metrics.jsonl is the durable history: a torn last line
(the process died mid-write) is tolerated when reading and dropped on resume.
history.sqlite is derived from it (see history_index.py) and rebuilt when it
does not match.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from minigpt.atomic import write_text_atomic
from minigpt.config import Config, config_to_toml, load_config
from minigpt.config_header import RUN_HEADER
from minigpt.errors import EngineError, MiniGPTError
from minigpt.events import Event, LogEvent, SampleDoneEvent
from minigpt.rundir.journal import (
    METRICS_EVENTS,
    SAMPLES_EVENTS,
    Journal,
    MetricsEvent,
    Reading,
)


def default_run_dir() -> Path:
    """A fresh, time-stamped folder under runs/ in the current directory."""
    return Path("runs") / time.strftime("run-%Y%m%d-%H%M%S")


def next_run_dir(path: str | os.PathLike[str]) -> Path:
    """The first of PATH-2, PATH-3, ... that does not exist yet."""
    path = Path(path)
    number = 2
    while (candidate := path.with_name(f"{path.name}-{number}")).exists():
        number += 1
    return candidate


class RunDir:
    """Paths and append-only files of one run directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Refer to the run directory at path (nothing is created yet)."""
        self.path = Path(path)
        self.config = self.path / "config.toml"
        self.metrics = self.path / "metrics.jsonl"
        self.index = self.path / "history.sqlite"
        self.model_ckpt = self.path / "model.ckpt"
        self.best_ckpt = self.path / "best.ckpt"
        self.samples = self.path / "samples.jsonl"
        self.socket = self.path / "engine.sock"
        self.log = self.path / "engine.log"
        self.lock = self.path / "engine.lock"
        # Said when metrics.jsonl or samples.jsonl cannot be written, and when they can
        # again, in order, until the run takes them (Run.drain).
        self.notices: list[LogEvent] = []
        self._metrics = Journal(self.metrics)
        self._samples = Journal(self.samples)

    def create(self) -> None:
        """Make the folder (and its parents) private to this user."""
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)

    def remove_temporaries(self) -> None:
        """Delete half-written files a killed engine left (.model.ckpt.PID.tmp and the like)."""
        for temp in self.path.glob(".*.tmp"):
            temp.unlink(missing_ok=True)

    def write_config(self, config: Config) -> None:
        """Replace config.toml with the resolved configuration, commented."""
        write_text_atomic(self.config, config_to_toml(config, RUN_HEADER))

    def read_config(self) -> Config:
        """config.toml, read as every command reads a config; MiniGPTError in one line when
        the folder is no run or its config cannot be used."""
        if not self.path.is_dir():
            raise MiniGPTError(f"{self.path}: no such run directory")
        if not self.config.is_file():
            raise MiniGPTError(f"{self.path}: not a run directory (it has no config.toml)")
        return load_config(self.config)

    def append(self, event: Event) -> None:
        """Add one event to metrics.jsonl, at once, so another process can read it."""
        if notice := self._metrics.append(event.to_dict()):
            self.notices.append(notice)

    def record_sample(self, event: Event) -> None:
        """Add one completion to samples.jsonl."""
        if notice := self._samples.append(event.to_dict()):
            self.notices.append(notice)

    def close(self) -> None:
        """Close metrics.jsonl and samples.jsonl."""
        self._metrics.close()
        self._samples.close()

    def read_metrics(self, last: int | None = None) -> Reading[MetricsEvent]:
        """The usable events of metrics.jsonl's last `last` lines (None: all of them, which
        only an export reads: the index answers everything else)."""
        return Reading(self.metrics, METRICS_EVENTS, last)

    def read_samples(self, last: int | None = None) -> Reading[SampleDoneEvent]:
        """The completions of samples.jsonl's last `last` lines (None: all of them, for an
        export)."""
        return Reading(self.samples, SAMPLES_EVENTS, last)


class RunLock:
    """engine.lock: an OS lock held by the one live engine of a run directory."""

    def __init__(self, run_dir: RunDir) -> None:
        """Refer to the run's lock file."""
        self.path = run_dir.lock
        self.fd: int | None = None
        self.created = False

    def __enter__(self) -> RunLock:
        """Take the lock or raise EngineError naming the live engine's pid."""
        self.created = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise EngineError(
                f"{self.path.parent} is in use by engine pid {pid}; attach to it with "
                f"minigpt-tui --attach {self.path.parent}, or stop that engine first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        """Release the lock (the file stays: removing it would race a new engine).

        When the run could not even be set up in a folder the lock created,
        the folder goes again, so a typo leaves nothing behind.
        """
        if self.fd is None:
            return
        if (
            error_type is not None
            and self.created
            and os.listdir(self.path.parent) == [self.path.name]
        ):
            self.path.unlink()
            self.path.parent.rmdir()
        os.close(self.fd)
        self.fd = None

    def holder(self) -> int | None:
        """The pid of the live engine holding this lock, or None when no engine is alive."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)
        return None

"""A disk that refuses writes: the previous checkpoint survives, training goes on, and the
history catches up without a gap once there is room again."""

import errno
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from minigpt.checkpoint import load_checkpoint
from minigpt.events import (
    CheckpointEvent,
    ConfigAppliedEvent,
    ErrorEvent,
    Event,
    LogEvent,
    StateEvent,
    StepEvent,
)
from minigpt.rundir.history_index import HistoryIndex
from minigpt.rundir.journal import Journal
from minigpt.rundir.layout import RunDir
from minigpt.service.engine import Engine
from minigpt.service.run import Run
from minigpt.service.server import Peer


def lines(*steps: int) -> str:
    """The text of a journal holding a {"step": N} record for each of steps."""
    return "".join(json.dumps({"step": step}) + "\n" for step in steps)


class FullDisk:
    """Makes minigpt.rundir.journal's os.write take only `room` more bytes (None: no limit), then
    fail with ENOSPC, as a real disk does: the write that fills it is cut short."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Patch the journal's write."""
        self.room: int | None = None
        real_write = os.write

        def write(fd: int, data: bytes) -> int:
            if self.room is None:
                return real_write(fd, data)
            if self.room == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written = real_write(fd, data[: self.room])
            self.room -= written
            return written

        monkeypatch.setattr(os, "write", write)  # the os module journal.py writes with


def test_journal_keeps_refused_lines_and_catches_up(tmp_path: Path, monkeypatch) -> None:
    """Lines refused by a full disk are written, in order, once it has room; the failure
    and the recovery are each reported once."""
    disk = FullDisk(monkeypatch)
    log = Journal(tmp_path / "metrics.jsonl")
    notices = [log.append({"step": 1})]
    disk.room = 0
    notices += [log.append({"step": step}) for step in range(2, 6)]
    assert log.path.read_text() == lines(1)
    disk.room = None
    notices += [log.append({"step": 6}), log.append({"step": 7})]
    assert log.path.read_text() == lines(1, 2, 3, 4, 5, 6, 7)
    levels = [notice and notice.level for notice in notices]
    assert levels == [None, "error", None, None, None, "info", None]
    assert notices[1] is not None and "No space left on device" in notices[1].message


@pytest.mark.parametrize("cut", [1, 5, -1])
def test_journal_writes_a_line_the_disk_cut_short_once(
    cut: int, tmp_path: Path, monkeypatch
) -> None:
    """A line the filling disk cut short, anywhere up to its newline, is in the file once
    after the catch-up, with no piece of it left."""
    disk = FullDisk(monkeypatch)
    log = Journal(tmp_path / "metrics.jsonl")
    log.append({"step": 1})
    disk.room = cut % len(json.dumps({"step": 2}) + "\n")  # -1: all but the newline
    log.append({"step": 2})
    log.append({"step": 3})
    disk.room = None
    log.append({"step": 4})
    log.close()
    assert log.path.read_text() == lines(1, 2, 3, 4)  # no piece of the cut line is left


def test_journal_ends_a_torn_line_before_appending(tmp_path: Path) -> None:
    """A line cut short by a killed writer garbles only itself."""
    path = tmp_path / "samples.jsonl"
    path.write_text('{"step": 1}\n{"step": 2, "te', encoding="utf-8")
    log = Journal(path)
    log.append({"step": 3})
    log.close()
    assert path.read_text() == '{"step": 1}\n{"step": 2, "te\n' + lines(3)


@pytest.mark.trains
def test_failed_checkpoint_write_keeps_the_old_one_and_training_goes_on(
    corpus_file: Path, tmp_path: Path, tiny_config, monkeypatch
) -> None:
    """torch.save failing as it does on a full disk: an error event, model.ckpt byte for
    byte as before, no temporary file left, and the next steps train."""
    config = tiny_config(corpus_file, **{"train.checkpoint_interval": 5})
    run = Run.start(config, tmp_path / "run")
    while run.trainer.step < 5:
        run.advance()
    before = run.run_dir.model_ckpt.read_bytes()

    def fail(*args, **kwargs) -> None:
        raise RuntimeError("PytorchStreamWriter failed writing file data/3: file write failed")

    monkeypatch.setattr(torch, "save", fail)
    events = [event for _ in range(5) for event in run.advance()]
    (error,) = [e for e in events if isinstance(e, ErrorEvent)]
    assert "model.ckpt" in error.message and "previous checkpoint is intact" in error.message
    assert run.run_dir.model_ckpt.read_bytes() == before
    assert sorted(p.name for p in run.run_dir.path.iterdir() if p.name.endswith(".tmp")) == []
    assert [e.step for e in events if isinstance(e, StepEvent)] == [6, 7, 8, 9, 10]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs mounted for the test (needs root, as CI runs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Write a file until the disk is full; return it."""
    filler = disk / "filler"
    # Unbuffered: a buffered file keeps the bytes a full disk refused and tries them again
    # on close, which then raises ENOSPC too (whenever the free space is no whole chunk).
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


def _checkpoint_or_paused(event: Event) -> bool:
    """A wait_for test: a checkpoint was written, or the engine is now paused."""
    paused = isinstance(event, StateEvent) and event.state == "paused"
    return paused or isinstance(event, CheckpointEvent)


@pytest.mark.trains
def test_engine_on_a_full_disk_trains_on_and_loses_no_history(
    engines, tiny_disk: Path, config_file: Path
) -> None:
    """A real full disk under a training engine: the checkpoint error and the history
    error are reported, training continues, model.ckpt stays loadable at its step, and
    after room is made the next checkpoint lands and metrics.jsonl has every step."""
    run_dir = tiny_disk / "run"
    client = engines(run_dir, "--config", str(config_file), "--start")
    good = client.wait_for(
        lambda e: isinstance(e, CheckpointEvent) and e.step is not None and e.step >= 10
    )
    # Training runs on while the disk fills, and its next checkpoints may land first, so
    # the disk fills while paused: the checkpoint to keep is the last one before the pause.
    client.send("pause")
    while not isinstance(event := client.wait_for(_checkpoint_or_paused), StateEvent):
        good = event
    filler = _fill(tiny_disk)
    client.send("resume")
    error = client.wait_for("error")
    assert "could not write" in error.message and "intact" in error.message
    during = client.wait_for(lambda e: isinstance(e, StepEvent) and e.step > good.step + 15)
    assert load_checkpoint(run_dir / "model.ckpt")["step"] == good.step
    filler.unlink()
    recovered = client.wait_for(lambda e: isinstance(e, CheckpointEvent) and e.step > during.step)
    client.send("shutdown")
    client.process.wait(30)
    assert load_checkpoint(run_dir / "model.ckpt")["step"] >= recovered.step
    steps = [e.step for e in RunDir(run_dir).read_metrics() if isinstance(e, StepEvent)]
    assert steps[-1] is not None and steps == list(range(1, steps[-1] + 1))
    index = HistoryIndex(RunDir(run_dir))  # caught up with every line by the engine's exit
    assert index.sync(limit=0) and [s for s, _, _ in index.thinned_steps(len(steps))] == steps
    index.close()
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    log = (run_dir / "engine.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log


@pytest.mark.trains
def test_config_change_applies_when_config_toml_cannot_be_written(
    corpus_file: Path, tmp_path: Path, tiny_config, monkeypatch
) -> None:
    """A hot change still applies; the failed rewrite of config.toml is an error notice."""
    run = Run.start(tiny_config(corpus_file), tmp_path / "run")
    seen: list = []
    engine = Engine(run, on_event=seen.append)

    def refuse(*args, **kwargs) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(RunDir, "write_config", refuse)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        line = json.dumps({"cmd": "set", "values": {"train.learning_rate": 0.002}})
        engine._receive(Peer(ours, 1), line.encode())
        engine._handle_inbox(wait=0.0)
    assert run.config.train.learning_rate == 0.002
    notices = [e for e in seen if isinstance(e, LogEvent) and e.level == "error"]
    assert notices and "config.toml not updated" in notices[0].message
    assert any(isinstance(e, ConfigAppliedEvent) for e in seen)
    run.close()


@pytest.mark.trains
def test_a_full_disk_met_by_a_save_command_is_told_to_clients(
    corpus_file: Path, tmp_path: Path, tiny_config, monkeypatch
) -> None:
    """A save between training steps that cannot log its checkpoint in metrics.jsonl
    tells clients so, before the checkpoint; the next write that lands says so too."""
    run = Run.start(tiny_config(corpus_file), tmp_path / "run")
    seen: list[Event] = []
    engine = Engine(run, on_event=seen.append)
    monkeypatch.setattr(engine.server, "broadcast", lambda message: None)
    disk = FullDisk(monkeypatch)
    disk.room = 0
    ours, theirs = socket.socketpair()
    with ours, theirs:
        engine._receive(Peer(ours, 1), json.dumps({"cmd": "save"}).encode())
        engine._handle_inbox(wait=0.0)
        assert [type(e) for e in seen] == [LogEvent, CheckpointEvent]
        refused = seen[0]
        assert isinstance(refused, LogEvent) and refused.level == "error"
        assert "cannot write metrics.jsonl" in refused.message
        disk.room = None
        engine._receive(Peer(ours, 1), json.dumps({"cmd": "save"}).encode())
        engine._handle_inbox(wait=0.0)
    assert [type(e) for e in seen[2:]] == [LogEvent, CheckpointEvent]
    caught_up = seen[2]
    assert isinstance(caught_up, LogEvent) and caught_up.level == "info"
    assert "written again" in caught_up.message
    metrics = run.run_dir.read_metrics()
    assert [type(e) for e in metrics] == [CheckpointEvent] * 2 and not metrics.skipped.count
    run.close()

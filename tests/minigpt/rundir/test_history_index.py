"""history.sqlite, the index of a run's metrics.jsonl: it always agrees with the file, and
whatever happens to it (deleted, truncated, damaged, from an older version or another run,
unwritable, a process killed mid-sync) costs the run nothing: it is rebuilt or done without."""

import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from minigpt.checkpoint import load_checkpoint, save_checkpoint
from minigpt.events import (
    AlertEvent,
    CheckpointEvent,
    ConfigAppliedEvent,
    EvalEvent,
    StepEvent,
)
from minigpt.rundir import history_index
from minigpt.rundir.history import History
from minigpt.rundir.history_index import HistoryIndex, index_files
from minigpt.rundir.journal import MetricsEvent
from minigpt.rundir.layout import RunDir
from minigpt.service.run import Run


def line(event: MetricsEvent) -> bytes:
    """An event as the engine writes it, at a time that depends on its step alone."""
    event.time = 1.8e9 + (event.step or 0)
    return json.dumps(event.to_dict()).encode() + b"\n"


def step_line(step: int) -> bytes:
    """A step event."""
    return line(StepEvent(step, 5 - step / 1000, 3e-4, 1e5, 2.0, step / 100, 0.5, False))


def history_lines(first: int, last: int) -> bytes:
    """Steps first..last, an eval every 10 steps, a checkpoint every 50, an alert at 33."""
    lines = []
    for step in range(first, last + 1):
        lines.append(step_line(step))
        if step % 10 == 0:
            lines.append(line(EvalEvent(step, 4.0, 4.5 - step / 1e4, 4.4, tokens_seen=step * 64)))
        if step % 50 == 0:
            lines.append(line(CheckpointEvent("run/model.ckpt", step)))
        if step == 33:
            lines.append(line(AlertEvent("grad_spike", step, "m")))
    return b"".join(lines)


def rows(run_dir: RunDir) -> dict[str, list]:
    """Everything the run's index holds, table by table."""
    db = sqlite3.connect(run_dir.index)
    try:
        tables = ("state", "steps", "evals", "marks", "skipped")
        return {table: db.execute(f"SELECT * FROM {table}").fetchall() for table in tables}
    finally:
        db.close()


def synced(run_dir: RunDir) -> HistoryIndex:
    """The run's index, synced (close it after use)."""
    index = HistoryIndex(run_dir)
    assert index.sync()
    return index


def rebuilt(run_dir: RunDir, tmp_path: Path) -> dict[str, list]:
    """The rows an index built from scratch on a copy of the run's metrics.jsonl holds."""
    fresh = RunDir(tmp_path / "fresh")
    shutil.rmtree(fresh.path, ignore_errors=True)
    fresh.create()
    shutil.copy(run_dir.metrics, fresh.metrics)
    synced(fresh).close()
    return rows(fresh)


@pytest.fixture
def run_dir(tmp_path: Path) -> RunDir:
    """A run directory whose metrics.jsonl holds 200 steps and their evals."""
    run_dir = RunDir(tmp_path / "run")
    run_dir.create()
    run_dir.metrics.write_bytes(history_lines(1, 200))
    return run_dir


def test_history_reads_the_whole_run_thinned(run_dir: RunDir, monkeypatch) -> None:
    """Steps and evals spread over the whole run, first and last kept; alerts; time."""
    monkeypatch.setattr("minigpt.rundir.history.STEP_POINTS", 50)
    monkeypatch.setattr("minigpt.rundir.history.EVAL_POINTS", 5)
    history = History.read(run_dir)
    steps = [step for step, _, _ in history.steps if step is not None]
    assert len(steps) == len(history.steps) == 50 and steps[0] == 1 and steps[-1] == 200
    assert steps == sorted(steps) and max(b - a for a, b in itertools.pairwise(steps)) <= 5
    assert [e.step for e in history.evals] == [10, 60, 110, 150, 200]
    assert [(a.kind, a.step) for a in history.alerts] == [("grad_spike", 33)]
    assert history.train_seconds == 2.0 and history.skipped == 0


def test_sync_reads_only_what_was_appended(run_dir: RunDir, tmp_path: Path) -> None:
    """A second sync indexes the new lines only, and a half-written line waits for its end."""
    index = synced(run_dir)
    covered = rows(run_dir)["state"][0][1]
    with open(run_dir.metrics, "ab") as f:
        f.write(history_lines(201, 230) + step_line(231)[:40])
    assert index.sync()
    assert rows(run_dir)["state"][0][1] == covered + len(history_lines(201, 230))
    with open(run_dir.metrics, "ab") as f:
        f.write(step_line(231)[40:])
    assert index.sync()
    index.close()
    assert rows(run_dir) == rebuilt(run_dir, tmp_path)
    assert History.read(run_dir).steps[-1][0] == 231


@pytest.mark.parametrize(
    "harm",
    [
        "index deleted",
        "index truncated",
        "index garbage",
        "index of an older version",
        "index of another run",
        "metrics.jsonl truncated",
        "metrics.jsonl replaced",
    ],
)
def test_an_index_that_does_not_match_is_rebuilt(run_dir: RunDir, tmp_path: Path, harm) -> None:
    """Whatever happened to the index or the file, the next sync agrees with the file."""
    synced(run_dir).close()
    if harm == "index deleted":
        run_dir.index.unlink()
    elif harm == "index truncated":
        with open(run_dir.index, "r+b") as f:
            f.truncate(os.path.getsize(run_dir.index) // 2)
    elif harm == "index garbage":
        run_dir.index.write_bytes(b"not a database\n" * 100)
    elif harm == "index of an older version":
        db = sqlite3.connect(run_dir.index)
        db.execute("PRAGMA user_version = 0")
        db.execute("DROP TABLE marks")
        db.commit()
        db.close()
    elif harm == "index of another run":
        other = RunDir(tmp_path / "other")
        other.create()
        other.metrics.write_bytes(history_lines(1, 300))
        synced(other).close()
        shutil.copy(other.index, run_dir.index)
    elif harm == "metrics.jsonl truncated":
        with open(run_dir.metrics, "r+b") as f:
            f.truncate(len(history_lines(1, 120)))
    elif harm == "metrics.jsonl replaced":
        run_dir.metrics.write_bytes(history_lines(1, 90) + history_lines(1, 250))
    index = HistoryIndex(run_dir)
    assert index.sync()
    index.close()
    assert rows(run_dir) == rebuilt(run_dir, tmp_path)


def test_a_copied_run_keeps_its_index(run_dir: RunDir, tmp_path: Path) -> None:
    """A run directory copied whole opens from its index as it is: nothing to rebuild."""
    synced(run_dir).close()
    copy = RunDir(tmp_path / "copy")
    shutil.copytree(run_dir.path, copy.path)
    before = rows(copy)
    index = HistoryIndex(copy)
    index.sync(limit=0)
    index.close()
    assert rows(copy) == before


def test_odd_lines_are_counted_by_line_number(run_dir: RunDir) -> None:
    """Garbled lines, unknown events and events without a step are skipped and counted,
    the first named by its line; blank lines are neither."""
    with open(run_dir.metrics, "ab") as f:
        f.write(b'\n{"event": "eval", "step": "x"}\n\xff\xfe\n{"event": "nope", "step": 3}\n')
        f.write(b'{"event": "step", "step": 99999999999999999999}\n' + step_line(201))
    lines = run_dir.metrics.read_bytes().count(b"\n")
    history = History.read(run_dir)
    assert history.skipped == 4
    assert history.notes == [
        f"{run_dir.metrics}: 4 unreadable lines skipped (the first is line {lines - 4})"
    ]
    assert history.steps[-1][0] == 201


def test_truncate_after_cuts_the_file_and_the_index(run_dir: RunDir, tmp_path: Path) -> None:
    """Lines after the last one about step 150 leave the file, which keeps its inode and its
    bytes before the cut; the index agrees with the file."""
    with open(run_dir.metrics, "ab") as f:
        f.write(b"garbled\n")
    inode = os.stat(run_dir.metrics).st_ino
    index = synced(run_dir)
    index.truncate_after(150)
    index.close()
    assert run_dir.metrics.read_bytes() == history_lines(1, 150)
    assert os.stat(run_dir.metrics).st_ino == inode
    assert rows(run_dir) == rebuilt(run_dir, tmp_path)
    with open(run_dir.metrics, "ab") as f:
        f.write(history_lines(151, 160))
    assert History.read(run_dir).steps[-1][0] == 160


def test_truncate_after_a_torn_line(run_dir: RunDir, tmp_path: Path) -> None:
    """A line a killed process left without its newline goes with the lines cut."""
    with open(run_dir.metrics, "ab") as f:
        f.write(step_line(201)[:30])
    index = HistoryIndex(run_dir)
    index.truncate_after(200)
    index.close()
    assert run_dir.metrics.read_bytes() == history_lines(1, 200)
    assert rows(run_dir) == rebuilt(run_dir, tmp_path)


def test_an_index_that_cannot_be_opened_is_kept_in_memory(run_dir: RunDir, monkeypatch) -> None:
    """An index file SQLite refuses to open (a read-only folder; made so here, since root,
    which CI runs as, writes anywhere) leaves the history readable and resumable, and the
    index says why it is slower."""
    real = history_index._connect

    def refuse(path: str) -> sqlite3.Connection:
        if path != ":memory:":
            raise sqlite3.OperationalError("unable to open database file")
        return real(path)

    monkeypatch.setattr(history_index, "_connect", refuse)
    index = HistoryIndex(run_dir)
    assert index.sync() and "cannot be used" in (index.problem or "")
    assert index.thinned_steps(10)[-1][0] == 200
    index.truncate_after(100)
    index.close()
    assert run_dir.metrics.read_bytes() == history_lines(1, 100)


def test_a_failing_sync_catches_up_later(run_dir: RunDir, tmp_path: Path) -> None:
    """A sync that cannot write (another process holds the write lock past the wait, as a
    full disk would refuse it) says why and changes nothing; the next one catches up."""
    index = synced(run_dir)
    with open(run_dir.metrics, "ab") as f:
        f.write(history_lines(201, 210))
    index.db.execute("PRAGMA busy_timeout = 0")
    blocker = sqlite3.connect(run_dir.index, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    assert not index.sync()
    assert "behind" in (index.problem or "")
    blocker.execute("ROLLBACK")
    blocker.close()
    assert index.sync() and index.problem is None
    index.close()
    assert rows(run_dir) == rebuilt(run_dir, tmp_path)


def test_syncs_from_two_processes_index_each_line_once(run_dir: RunDir, tmp_path: Path) -> None:
    """Two indexes of one run syncing at once, while lines are appended, end up as one
    built from scratch."""
    synced(run_dir).close()
    stop = threading.Event()

    def keep_syncing() -> None:
        index = HistoryIndex(run_dir)
        while not stop.is_set():
            index.sync()
        index.close()

    threads = [threading.Thread(target=keep_syncing) for _ in range(2)]
    for thread in threads:
        thread.start()
    with open(run_dir.metrics, "ab") as f:
        for first in range(201, 601, 20):
            f.write(history_lines(first, first + 19))
            f.flush()
    stop.set()
    for thread in threads:
        thread.join()
    synced(run_dir).close()
    assert rows(run_dir) == rebuilt(run_dir, tmp_path)


def test_a_sync_killed_midway_is_taken_up(run_dir: RunDir, tmp_path: Path) -> None:
    """kill -9 during a long first sync: the rounds it committed stay, and the next sync
    finishes the job."""
    run_dir.metrics.write_bytes(history_lines(1, 20000))
    code = (
        "import sys, time\n"
        "from minigpt.rundir import history_index as h\n"
        "from minigpt.rundir.layout import RunDir\n"
        "h.ROUND_BYTES, h.PROGRESS_FROM = 1 << 14, 0\n"
        "index = h.HistoryIndex(RunDir(sys.argv[1]))\n"
        "def report(stage, fraction):\n"
        "    print(fraction, flush=True)\n"
        "    time.sleep(0.01)  # time for the test to kill it midway\n"
        "index.sync(report)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(run_dir.path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    while float(child.stdout.readline() or 1) < 0.2:  # a fifth of the rounds committed
        pass
    child.send_signal(signal.SIGKILL)
    child.wait()
    covered = rows(run_dir)["state"][0][1]
    assert 0 < covered < run_dir.metrics.stat().st_size
    synced(run_dir).close()
    assert rows(run_dir) == rebuilt(run_dir, tmp_path)


def test_each_eval_carries_the_training_time_by_it(run_dir: RunDir) -> None:
    """An eval line that states no training time gets its step's, in a later sync too; one
    that states its own keeps it."""
    index = synced(run_dir)
    with open(run_dir.metrics, "ab") as f:
        f.write(
            line(EvalEvent(200, 4.0, 4.0, 4.0)) + line(EvalEvent(200, 4.0, 4.0, 4.0, elapsed=9.5))
        )
    assert index.sync()
    evals = index.thinned_evals(1000)
    index.close()
    assert [(e.step, e.elapsed) for e in evals[:2]] == [(10, 0.1), (20, 0.2)]
    assert [(e.step, e.elapsed) for e in evals[-2:]] == [(200, 2.0), (200, 9.5)]


def test_the_best_eval_is_the_first_with_the_lowest_val_loss(tmp_path: Path) -> None:
    """A tie goes to the earlier eval; a val loss that is NaN, infinite or missing is never
    the best; a run without evals has none."""
    run_dir = RunDir(tmp_path / "run")
    run_dir.create()
    run_dir.metrics.write_bytes(step_line(1))
    index = synced(run_dir)
    assert index.best_eval() is None
    odd = [b"NaN", b"-1e999", b"null", b'"low"']
    with open(run_dir.metrics, "ab") as f:
        for step, loss in ((10, 3.0), (20, 2.5), (30, 2.5)):
            f.write(step_line(step) + line(EvalEvent(step, loss, loss, loss)))
        for value in odd:
            f.write(b'{"event": "eval", "step": 40, "train_loss": 1.0, "val_loss": %s}\n' % value)
    assert index.sync()
    best = index.best_eval()
    index.close()
    assert best is not None and (best.step, best.val_loss, best.elapsed) == (20, 2.5, 0.2)


def test_config_changes_keep_their_order(run_dir: RunDir) -> None:
    """Config changes come back oldest first, as the dashboard marks them."""
    with open(run_dir.metrics, "ab") as f:
        for step in (201, 202):
            f.write(line(ConfigAppliedEvent(step, {"train.learning_rate": [1e-3, 1e-4]})))
    assert [c.step for c in History.read(run_dir).config_changes] == [201, 202]


@pytest.mark.trains
def test_resuming_rewrites_no_history_and_keeps_the_alerts(
    corpus_file: Path, tmp_path: Path, tiny_config, monkeypatch
) -> None:
    """Resuming cuts only the steps trained after model.ckpt (same file, same bytes
    before them) and takes the alerts' state from the checkpoint, as it was when saved;
    a checkpoint without that state (an older one) has the end of the history replayed."""
    monkeypatch.setattr("minigpt.service.run.REPLAYED_LINES", 8)  # fewer than the alerts' windows
    values = {"train.checkpoint_interval": 20, "train.eval_interval": 10}
    run = Run.start(tiny_config(corpus_file, **values), tmp_path / "run")
    while run.trainer.step < 20:
        run.advance()
    saved_bytes, saved_alerts = run.run_dir.metrics.read_bytes(), run.alerts.state_dict()
    while run.trainer.step < 27:  # lost when the process dies
        run.advance()
    run.close()
    inode = os.stat(run.run_dir.metrics).st_ino
    resumed = Run.resume(None, tmp_path / "run")
    resumed.close()
    assert run.run_dir.metrics.read_bytes() == saved_bytes
    assert os.stat(run.run_dir.metrics).st_ino == inode
    assert resumed.alerts.state_dict() == saved_alerts
    state = load_checkpoint(run.run_dir.model_ckpt)
    del state["alerts"]
    save_checkpoint(run.run_dir.model_ckpt, state)
    older = Run.resume(None, tmp_path / "run")
    older.close()
    replayed = older.alerts.state_dict()["losses"]
    assert 0 < len(replayed) < 8 and replayed == saved_alerts["losses"][-len(replayed) :]


def test_an_index_damaged_while_open_is_rebuilt(run_dir: RunDir, tmp_path: Path) -> None:
    """An index overwritten with junk under an open connection (another program, a bad
    disk) is replaced the next time it is read, and agrees with the file again."""
    index = synced(run_dir)
    with open(run_dir.index, "r+b") as f:
        f.write(b"\xff" * os.path.getsize(run_dir.index))
    for path in index_files(run_dir.index)[1:]:
        path.unlink(missing_ok=True)
    history = History.of(index, run_dir)
    index.close()
    assert history.steps[-1][0] == 200 and len(history.evals) == 20
    assert rows(run_dir) == rebuilt(run_dir, tmp_path)

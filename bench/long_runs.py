"""How the cost of opening a run grows with its length: engine hello, status, dashboard, disk.

Trains one real tiny run (seconds) on a generated corpus, then builds longer
runs from it: N step events cycled from the real ones (steps renumbered 1..N,
time and elapsed kept increasing), an eval every --eval-every steps with its
sample, a model.ckpt checkpoint event every 1,000 steps, and the real
checkpoint with its step set to N and max_iters above it, so an engine
resumes it idle. The real 40-step run is the reference row.

For each run it measures:

  first hello   seconds from spawning `minigpt engine --resume` to its hello, on the
                run's first open: a run built here has no history.sqlite yet (like a
                run from before it existed), so this open indexes all of metrics.jsonl
  hello         the same on later opens: the median of --repeats opens less the first
  engine MB     the engine's resident memory right after its hello, on the last open
  status s      `minigpt status --run-dir RUN` with no engine alive (median)
  attach s, MB  minigpt-tui --attach RUN in tmux (100x30) with an engine alive: seconds
                until its stats panel shows the run's step, and its resident memory then
  dir MB        the run folder after all that, and its bytes per step

plus one `minigpt status` over every built run, each run's files, and what
keeping the index up costs a training engine: the microseconds a step of
history.sqlite's sync, fed --sync-batch steps at a time as an engine syncing
each second at that many steps a second would. The
metrics file is written fresh just before the first open, so it is read from the
page cache, not the disk. Needs tmux for the dashboard columns.

    python bench/long_runs.py [--sizes 1000 100000 1000000 10000000] [--repeats 3]
        [--eval-every 100] [--sync-batch 300] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch

from minigpt.rundir.history_index import HistoryIndex
from minigpt.rundir.layout import RunDir
from minigpt.service.client import Client

TUI = Path(sys.executable).parent / "minigpt-tui"
REFERENCE_STEPS = 40
CHECKPOINT_EVERY = 1000
BLOCK = 10_000  # steps formatted per write
PROMPT = "the model"
WORDS = "the model learns to predict a next token from its context window of small text"
TINY = {
    "model.d_model": 32,
    "model.num_heads": 2,
    "model.num_blocks": 1,
    "model.context_length": 32,
    "train.batch_size": 8,
    "train.max_iters": REFERENCE_STEPS,
    "train.eval_interval": 10,
    "train.eval_iters": 4,
    "train.checkpoint_interval": 20,
    "train.warmup_iters": 5,
    "train.threads": 1,
    "data.tokenizer": "char",
    "sample.prompt": PROMPT,
    "sample.max_new_tokens": 40,
    "sample.at_eval": "true",
}


@dataclass
class Row:
    """What was measured on one run."""

    steps: int
    evals: int
    first_hello: float = 0.0
    hellos: list[float] = field(default_factory=list)
    engine_mb: float = 0.0
    statuses: list[float] = field(default_factory=list)
    attach: float | None = None
    dashboard_mb: float | None = None
    files: dict[str, int] = field(default_factory=dict)


def train_reference(folder: Path) -> Path:
    """Write a small corpus and train the tiny real run on it; its run folder."""
    rng = random.Random(0)
    lines = (" ".join(rng.choice(WORDS.split()) for _ in range(12)) for _ in range(400))
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    run_dir = folder / "runs" / f"steps-{REFERENCE_STEPS}"
    values = TINY | {"data.path": str(corpus)}
    command = [sys.executable, "-m", "minigpt", "train", "--run-dir", str(run_dir)]
    command += [flag for key, value in values.items() for flag in ("--set", f"{key}={value}")]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"training the reference run failed:\n{done.stderr}")
    return run_dir


def template(event: dict[str, object], holes: dict[str, str]) -> str:
    """A %-format line of event, each key in holes replaced by its format (e.g. %(step)d)."""
    marked = {key: f"\0{key}\0" if key in holes else value for key, value in event.items()}
    line = json.dumps(marked).replace("%", "%%")
    for key, hole in holes.items():
        line = line.replace(json.dumps(f"\0{key}\0"), hole)
    return line + "\n"


@dataclass
class Templates:
    """The reference run's events as format strings, and its pace."""

    steps: list[str]
    evals: list[str]
    samples: list[str]
    checkpoint: dict[str, object]
    seconds_per_step: float
    start_time: float

    @classmethod
    def read(cls, run_dir: Path) -> Templates:
        """Templates from a run's metrics.jsonl and samples.jsonl."""
        events = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
        samples = [json.loads(line) for line in (run_dir / "samples.jsonl").open()]
        steps = [e for e in events if e["event"] == "step"]
        timed = {"step": "%(step)d", "time": "%(time)r"}
        return cls(
            steps=[template(e, timed | {"elapsed": "%(elapsed)r"}) for e in steps],
            evals=[template(e, timed) for e in events if e["event"] == "eval"],
            samples=[template(s, timed | {"id": '"eval-%(step)d"'}) for s in samples],
            checkpoint=next(e for e in events if e["event"] == "checkpoint"),
            seconds_per_step=steps[-1]["elapsed"] / steps[-1]["step"],
            start_time=steps[0]["time"],
        )


def write_history(run_dir: Path, t: Templates, steps: int, eval_every: int) -> int:
    """Write metrics.jsonl and samples.jsonl of a run `steps` long; the number of evals."""
    checkpoint = t.checkpoint | {"path": str(run_dir / "model.ckpt")}
    saved = template(checkpoint, {"step": "%(step)d", "time": "%(time)r"})
    evals = 0
    with (
        open(run_dir / "metrics.jsonl", "w", buffering=1 << 22) as metrics,
        open(run_dir / "samples.jsonl", "w", buffering=1 << 22) as samples,
    ):
        for first in range(1, steps + 1, BLOCK):
            lines, said = [], []
            for step in range(first, min(first + BLOCK, steps + 1)):
                elapsed = step * t.seconds_per_step
                at = {"step": step, "time": t.start_time + elapsed, "elapsed": elapsed}
                lines.append(t.steps[(step - 1) % len(t.steps)] % at)
                if step % eval_every == 0:
                    lines.append(t.evals[evals % len(t.evals)] % at)
                    said.append(t.samples[evals % len(t.samples)] % at)
                    evals += 1
                if step % CHECKPOINT_EVERY == 0:
                    lines.append(saved % at)
            metrics.write("".join(lines))
            samples.write("".join(said))
    return evals


def resume_idle(source: Path, run_dir: Path, steps: int) -> None:
    """Copy source's checkpoint and config.toml to run_dir as if trained `steps` steps,
    with max_iters above that so an engine resumes it idle."""
    max_iters = steps + 1000
    state = torch.load(source / "model.ckpt", weights_only=True)
    per_step = state["elapsed"] / max(1, state["step"])
    tokens_per_step = state["tokens_seen"] / max(1, state["step"])
    state["step"], state["elapsed"] = steps, per_step * steps
    state["tokens_seen"] = int(tokens_per_step * steps)
    state["config"]["train"]["max_iters"] = max_iters
    torch.save(state, run_dir / "model.ckpt")
    config = (source / "config.toml").read_text()
    config = re.sub(r"(?m)^max_iters = \d+", f"max_iters = {max_iters}", config)
    (run_dir / "config.toml").write_text(config)


def build_run(reference: Path, t: Templates, folder: Path, steps: int, eval_every: int) -> int:
    """Build a run `steps` long under folder from the reference; its number of evals."""
    run_dir = folder / f"steps-{steps}"
    run_dir.mkdir(mode=0o700)
    evals = write_history(run_dir, t, steps, eval_every)
    resume_idle(reference, run_dir, steps)
    return evals


def rss_mb(pid: int) -> float:
    """A process's resident memory (VmRSS) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_engine(run_dir: Path) -> tuple[Client, float, float]:
    """Spawn an engine resuming run_dir: (client, seconds to its hello, engine MB then)."""
    started = time.perf_counter()
    client = Client.spawn(run_dir, ["--resume"], timeout=3600)
    seconds = time.perf_counter() - started
    return client, seconds, rss_mb(client.hello.pid)


def stop_engine(client: Client) -> None:
    """Shut an engine down without saving and wait for it to exit."""
    try:
        client.send("shutdown", save=False)
        client.process.wait(120)
    finally:
        client.close()
        if client.process.poll() is None:
            client.process.kill()
            client.process.wait()


def status_seconds(command: list[str], cwd: Path | None = None) -> float:
    """Wall seconds of one `minigpt status` command."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "minigpt", "status", *command],
        cwd=cwd, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def attach_dashboard(run_dir: Path, step: int) -> tuple[float, float]:
    """With an engine alive on run_dir, launch minigpt-tui --attach in tmux: (seconds until
    the pane shows the run's step from the engine's hello, the dashboard's MB then)."""
    tmux = ["tmux", "-L", f"minigpt-long-{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]
    started = time.perf_counter()
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "100", "-y", "30", "-e", "TERM=xterm-256color",
         f"exec {TUI} --attach {run_dir}"],
        check=True,
    )  # fmt: skip
    pid = None
    try:
        listed, capture = [*tmux, "list-panes", "-F", "#{pane_pid}"], [*tmux, "capture-pane", "-p"]
        pid = int(subprocess.run(listed, capture_output=True, text=True).stdout.split()[0])
        shown = f"step {step:,} / "  # the stats panel says "step 0 / 0" until the hello is in
        while shown not in subprocess.run(capture, capture_output=True, text=True).stdout:
            if time.perf_counter() - started > 3600:
                raise SystemExit(f"the dashboard never showed {run_dir}")
            time.sleep(0.05)
        return time.perf_counter() - started, rss_mb(pid)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        for _ in range(100):  # it detaches once its terminal has gone
            if pid is None or not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)


def measure(run_dir: Path, row: Row, repeats: int, dashboard: bool) -> None:
    """Open run_dir's engine `repeats` times (the dashboard joins the last), then status."""
    for number in range(repeats):
        client, seconds, memory = open_engine(run_dir)
        try:
            if number == 0:
                row.first_hello = seconds
            row.engine_mb = memory
            if number > 0 or repeats == 1:
                row.hellos.append(seconds)
            if dashboard and number == repeats - 1:
                row.attach, row.dashboard_mb = attach_dashboard(run_dir, client.hello.step)
        finally:
            stop_engine(client)
        print(f"  {row.steps:,} steps: hello after {seconds:.2f} s ({memory:.0f} MB)", flush=True)
    for _ in range(repeats):
        row.statuses.append(status_seconds(["--run-dir", str(run_dir)]))
    row.files = {p.name: p.stat().st_size for p in sorted(run_dir.iterdir()) if p.is_file()}


def sync_microseconds(run_dir: Path, t: Templates, steps: int, batch: int) -> float:
    """Microseconds a step that history.sqlite's sync takes to index `steps` steps
    appended `batch` at a time (and the evals among them)."""
    run_dir.mkdir(mode=0o700)
    everything = run_dir / "everything.jsonl"
    write_history(run_dir, t, steps, 100)
    (run_dir / "metrics.jsonl").rename(everything)
    lines = everything.read_bytes().splitlines(keepends=True)
    index = HistoryIndex(RunDir(run_dir))
    spent = 0.0
    with open(run_dir / "metrics.jsonl", "ab") as metrics:
        for first in range(0, len(lines), batch):
            metrics.write(b"".join(lines[first : first + batch]))
            metrics.flush()
            started = time.perf_counter()
            index.sync()
            spent += time.perf_counter() - started
    index.close()
    return spent / steps * 1e6


def optional(value: float | None, spec: str) -> str:
    """value formatted, or a dash when it was not measured."""
    return "-" if value is None else format(value, spec)


def print_tables(rows: list[Row]) -> None:
    """The Markdown table of costs, then one of each run's files in MB."""
    print("| steps | evals | first hello s | hello s | engine MB | status s "
          "| attach s | dashboard MB | dir MB | bytes/step |")  # fmt: skip
    print("|" + "---:|" * 10)
    for r in rows:
        size = sum(r.files.values())
        cells = [
            f"{r.steps:,}", f"{r.evals:,}", f"{r.first_hello:.2f}",
            f"{statistics.median(r.hellos):.2f}", f"{r.engine_mb:.0f}",
            f"{statistics.median(r.statuses):.2f}", optional(r.attach, ".2f"),
            optional(r.dashboard_mb, ".0f"), f"{size / 1e6:.1f}", f"{size / r.steps:.0f}",
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    names = sorted({name for r in rows for name in r.files})
    print()
    print("| steps | " + " | ".join(names) + " |")
    print("|" + "---:|" * (len(names) + 1))
    for r in rows:
        sizes = [f"{r.files[n] / 1e6:.2f}" if n in r.files else "-" for n in names]
        print(f"| {r.steps:,} | " + " | ".join(sizes) + " |")


def main() -> None:
    """Train the reference, build each size, measure each run, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100000, 1000000, 10000000])
    parser.add_argument("--repeats", type=int, default=3, help="engine opens and statuses a run")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--sync-batch", type=int, default=300, help="steps a sync indexes")
    parser.add_argument("--keep", metavar="DIR", help="build the runs in DIR and keep them")
    args = parser.parse_args()
    dashboard = shutil.which("tmux") is not None
    if not dashboard:
        print("note: no tmux here, so no dashboard columns", flush=True)
    if args.keep:
        folder = Path(args.keep).resolve()
        folder.mkdir(parents=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="long-runs-"))
    try:
        started = time.perf_counter()
        reference = train_reference(folder)
        resume_idle(reference, reference, REFERENCE_STEPS)
        print(f"trained the reference run in {time.perf_counter() - started:.1f} s", flush=True)
        templates = Templates.read(reference)
        rows = [Row(REFERENCE_STEPS, len(templates.evals))]
        measure(reference, rows[0], args.repeats, dashboard)
        for steps in args.sizes:
            started = time.perf_counter()
            evals = build_run(reference, templates, reference.parent, steps, args.eval_every)
            print(f"built {steps:,} steps in {time.perf_counter() - started:.1f} s", flush=True)
            rows.append(Row(steps, evals))
            measure(reference.parent / f"steps-{steps}", rows[-1], args.repeats, dashboard)
        every = status_seconds([], cwd=folder)
        syncing = [
            sync_microseconds(folder / f"sync-{n}", templates, 30_000, args.sync_batch)
            for n in range(3)
        ]
        print()
        print_tables(rows)
        print()
        print(f"`minigpt status` over all {len(rows)} runs: {every:.2f} s")
        print(
            f"history.sqlite's sync, {args.sync_batch} steps at a time: "
            f"{statistics.median(syncing):.1f} us a step (median of 3 x 30,000 steps)"
        )
        print(f"command: python bench/long_runs.py {' '.join(sys.argv[1:])}".rstrip())
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

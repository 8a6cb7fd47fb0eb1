"""What the dashboard costs a run on this machine, per engine thread count.

For each train.threads value, alternately for several rounds:

  bench      `minigpt bench` on the same config (the trainer alone)
  alone      an engine training, watched by this script only (a light client)
  dashboard  the same, with minigpt-tui attached in a real terminal (tmux, 100x30)

Prints each mode's median tokens/s (tokens per step over the median step
time), the dashboard's per-round ratios to bench and to alone (medians), and
the dashboard process's own CPU use over the window (percent of one core,
from /proc). Needs tmux.

    python bench/dashboard_cost.py [--threads 1 2] [--rounds 3] [--steps 150] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from engine_overhead import run_bench  # the same bench measurement, same settings

from minigpt.events import StepEvent
from minigpt.service.client import Client

WARMUP = 10
TUI = Path(sys.executable).parent / "minigpt-tui"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its waited-for children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tui_pid(session: str) -> int:
    """The pid of the program running in a tmux session's pane."""
    out = subprocess.run(
        ["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout.split()[0])


def measure(args: argparse.Namespace, threads: int, dashboard: bool) -> tuple[float, float]:
    """(tokens/s, dashboard CPU % of one core) for one engine run."""
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        sets = [*args.set, "train.eval_interval=1000000"]
        sets += ["train.checkpoint_interval=1000000", f"train.max_iters={WARMUP + args.steps}"]
        client = Client.spawn(run_dir, [flag for s in sets for flag in ("--set", s)])
        session = None
        if dashboard:
            session = f"minigpt-bench-{uuid.uuid4().hex[:8]}"
            subprocess.run(
                ["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                 "-e", "TERM=xterm-256color", f"exec {TUI} --attach {run_dir}"],
                check=True,
            )  # fmt: skip
            time.sleep(3)  # let the dashboard attach and draw
        tokens_per_step = client.hello.model.tokens_per_step
        client.send("start")
        times: dict[int, float] = {}
        cpu_start = cpu_end = 0.0
        while len(times) < WARMUP + args.steps:
            event = client.wait_for(StepEvent, timeout=600)
            times[event.step] = event.time
            if session and event.step == WARMUP:
                cpu_start = cpu_seconds(tui_pid(session))
        if session:
            cpu_end = cpu_seconds(tui_pid(session))
            subprocess.run(["tmux", "kill-session", "-t", session], check=False)
        client.send("shutdown", save=False)
        client.process.wait(60)
        client.close()
    window = times[WARMUP + args.steps] - times[WARMUP]
    gaps = [times[k] - times[k - 1] for k in range(WARMUP + 1, WARMUP + args.steps + 1)]
    return tokens_per_step / statistics.median(gaps), 100 * (cpu_end - cpu_start) / window


def main() -> None:
    """Alternate alone and with the dashboard for each thread count; print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    base_sets = list(args.set)
    for threads in args.threads:
        args.set = [*base_sets, f"train.threads={threads}"]
        bench, alone, watched, cpu = [], [], [], []
        for round_number in range(1, args.rounds + 1):
            bench.append(run_bench(args))
            alone.append(measure(args, threads, dashboard=False)[0])
            speed, used = measure(args, threads, dashboard=True)
            watched.append(speed)
            cpu.append(used)
            print(
                f"threads {threads} round {round_number}: bench {bench[-1]:,.0f}  "
                f"alone {alone[-1]:,.0f}  dashboard {speed:,.0f} tokens/s  "
                f"(dashboard CPU {used:.1f}%)",
                flush=True,
            )
        to_bench = statistics.median(w / b for w, b in zip(watched, bench, strict=True))
        to_alone = statistics.median(w / a for w, a in zip(watched, alone, strict=True))
        print(
            f"threads {threads}: bench {statistics.median(bench):,.0f}  "
            f"alone {statistics.median(alone):,.0f}  "
            f"with dashboard {statistics.median(watched):,.0f} tokens/s  "
            f"ratio to bench {to_bench:.3f}  to alone {to_alone:.3f}  "
            f"dashboard CPU {statistics.median(cpu):.1f}% of a core"
        )


if __name__ == "__main__":
    main()

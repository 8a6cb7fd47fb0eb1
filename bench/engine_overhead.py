"""What serving a run costs: engine tokens/s with clients attached, against `minigpt bench`.

Three ways of training the same config, run alternately for several rounds:

  bench    `minigpt bench`: the trainer alone, no sockets, no files
  engine   an engine process with one client that reads every event
  stalled  the same, plus a second client that connects and never reads

Speed is tokens per step over the median step time, which shrugs off the odd
step another process on this small machine interrupts. For the engine, a
step's time is the gap between consecutive step events' timestamps, so it
covers everything the engine does per step (metrics.jsonl, broadcasting,
commands), not just the trainer's work. Evaluation and checkpoints are pushed
out of the window, since bench does neither.

    python bench/engine_overhead.py [--rounds 5] [--steps 100] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from minigpt.events import StepEvent
from minigpt.service.client import Client
from minigpt.service.server import connectable_path

WARMUP = 10


def settings(args: argparse.Namespace) -> list[str]:
    """--set arguments shared by every mode."""
    fixed = ["train.eval_interval=1000000", "train.checkpoint_interval=1000000"]
    fixed.append(f"train.max_iters={WARMUP + args.steps}")
    return [flag for pair in [*args.set, *fixed] for flag in ("--set", pair)]


def run_bench(args: argparse.Namespace) -> float:
    """tokens/s of `minigpt bench` on the config."""
    command = [sys.executable, "-m", "minigpt", "bench", "--json", "--steps", str(args.steps)]
    command += ["--warmup", str(WARMUP), *settings(args)]
    result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    tokens_per_step = result["tokens_per_sec"] * result["ms_per_step"] / 1000
    return tokens_per_step / (result["ms_per_step_median"] / 1000)


def run_engine(args: argparse.Namespace, stalled: bool) -> float:
    """tokens/s of an engine with a reading client (and optionally one that never reads)."""
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        client = Client.spawn(run_dir, settings(args))
        idle = None
        if stalled:
            idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            idle.connect(connectable_path(run_dir / "engine.sock"))
        tokens_per_step = client.hello.model.tokens_per_step
        client.send("start")
        times = {}
        while len(times) < args.steps + WARMUP:
            event = client.wait_for(StepEvent, timeout=600)
            times[event.step] = event.time
        client.send("shutdown", save=False)
        client.process.wait(60)
        client.close()
        if idle is not None:
            idle.close()
    steps = range(WARMUP + 1, WARMUP + args.steps + 1)
    return tokens_per_step / statistics.median(times[k] - times[k - 1] for k in steps)


def main() -> None:
    """Alternate the three modes, then print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    results: dict[str, list[float]] = {"bench": [], "engine": [], "stalled": []}
    for round_number in range(1, args.rounds + 1):
        results["bench"].append(run_bench(args))
        results["engine"].append(run_engine(args, stalled=False))
        results["stalled"].append(run_engine(args, stalled=True))
        line = "  ".join(f"{mode} {values[-1]:,.0f}" for mode, values in results.items())
        print(f"round {round_number}: tokens/s  {line}", flush=True)
    for mode, values in results.items():
        # Each round's ratio pairs runs minutes apart, which cancels the slow
        # drift of this shared machine; the median of those is the headline.
        paired = statistics.median(v / b for v, b in zip(values, results["bench"], strict=True))
        print(
            f"{mode:8s} median {statistics.median(values):9,.0f} tokens/s   "
            f"median of per-round ratios to bench {paired:.3f}"
        )


if __name__ == "__main__":
    main()

"""The default config.toml on the default corpus, as a newcomer runs it: how fast it learns.

Runs `minigpt train` with the shipped defaults in a fresh run directory (the
token cache warm from an earlier run, as on a second launch), then reads its
metrics.jsonl and samples.jsonl and reports:

- seconds from launching the process to its first training step;
- the process's peak resident memory;
- the val loss at step 0 and at the end, and when the val loss first came
  half the way from the one to the other (seconds after launch);
- the alerts the run raised (none, for a healthy run);
- the answer to the [sample] prompt at the evals nearest 1 minute and the end.

    python bench/default_run.py [--set section.key=value ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    """Train with the defaults and summarise the run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    overrides = [flag for pair in args.set for flag in ("--set", pair)]
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        command = [sys.executable, "-m", "minigpt", "train", "--run-dir", str(run_dir), *overrides]
        launched = time.time()
        subprocess.run(command, capture_output=True, text=True, check=True)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        events = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
        samples = [json.loads(line) for line in (run_dir / "samples.jsonl").open()]
    steps = [e for e in events if e["event"] == "step"]
    evals = [e for e in events if e["event"] == "eval"]
    first, last = evals[0]["val_loss"], evals[-1]["val_loss"]
    halfway = first - (first - last) / 2
    reached = next(e for e in evals if e["val_loss"] <= halfway)
    print(f"first step {steps[0]['time'] - launched:.1f} s after launch")
    print(f"peak RSS {peak_mb:,.0f} MB")
    print(f"val loss {first:.3f} at step 0, {last:.3f} at step {evals[-1]['step']}")
    print(
        f"half way ({halfway:.3f}) reached at step {reached['step']}, "
        f"{reached['time'] - launched:.0f} s after launch; the run took "
        f"{events[-1]['time'] - launched:.0f} s"
    )
    alerts = [f"{e['kind']} at step {e['step']}" for e in events if e["event"] == "alert"]
    print(f"alerts: {', '.join(alerts) or 'none'}")
    minute = [e for e in evals if e["time"] - launched <= 60.0]
    if minute:
        print(
            f"val loss {minute[-1]['val_loss']:.3f} at the last eval within 60 s of launch "
            f"(step {minute[-1]['step']})"
        )
    for target in (60.0, events[-1]["time"] - launched):
        step_then = min(evals, key=lambda e: abs(e["time"] - launched - target))["step"]
        answer = next((s for s in samples if s["step"] == step_then), None)
        if answer is not None:
            print(f"\n--- step {step_then} (~{target:.0f} s): {answer['prompt']}{answer['text']}")


if __name__ == "__main__":
    main()

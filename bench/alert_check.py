"""Alerts under every CPU kernel set: a run pushed until it breaks is told, a healthy one is not.

torch picks its CPU kernels by ATEN_CPU_CAPABILITY, and each set is another valid
float trajectory. For each set (default, avx2, and the machine's best), this runs
`minigpt train` on the shipped defaults with warmup 0 and an eval every 20 steps,
at a learning rate of 10 three ways (AdamW's `learning_rate`; Muon with
`learning_rate` 10; Muon with `muon_learning_rate` 10), and prints the first
alert: its step (the must is 40 at the latest), its kind, and the rate its message
says to lower. With --healthy it then trains the default 2,000-step run (python-stdlib,
read about 3 times over) and nanoGPT's CPU setting (tinyshakespeare, char, 2,000 steps),
which must raise none,
under the machine's best kernels (the default set takes 10-20 minutes for the
first of them on a 2-core machine: add it with --healthy-capabilities).

    python bench/alert_check.py [--healthy] [--capabilities default avx2 best]
        [--healthy-capabilities best]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SHAKESPEARE = Path(__file__).parent.parent.parent / "shared" / "data" / "tinyshakespeare.txt"
BROKEN = {
    "adamw, learning_rate 10": ['train.optimizer="adamw"', "train.learning_rate=10"],
    "muon, learning_rate 10": ["train.learning_rate=10"],
    "muon, muon_learning_rate 10": ["train.muon_learning_rate=10"],
}
FAST_EVALS = ["train.warmup_iters=0", "train.eval_interval=20", "train.max_iters=40"]
NANOGPT = [
    'data.tokenizer="char"',
    "model.dropout=0.0",
    "train.eval_interval=250",
]


def train(capability: str, overrides: list[str], data: Path | None = None) -> list[dict]:
    """The events in metrics.jsonl of one `minigpt train` run under a kernel set ("best":
    unset)."""
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability != "best":
        env["ATEN_CPU_CAPABILITY"] = capability
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        command = [sys.executable, "-m", "minigpt", "train", "--run-dir", str(run_dir)]
        command += ["--set", "sample.at_eval=false"]
        command += [flag for value in overrides for flag in ("--set", value)]
        command += ["--data", str(data)] if data else []
        subprocess.run(command, env=env, capture_output=True, check=False)
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def of(kind: str, events: list[dict]) -> list[dict]:
    """The events of one kind."""
    return [e for e in events if e.get("event") == kind]


def peak_weight_scale(events: list[dict], d_model: int = 128) -> float:
    """The largest block weight RMS at any eval, over 1/sqrt(d_model) (the alert is at 10)."""
    norms = [n for e in of("eval", events) for n in e.get("weight_norm") or []]
    return max(norms, default=0.0) / math.sqrt(12 * d_model**2) * math.sqrt(d_model)


def main() -> None:
    """Print one line per kernel set and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--healthy", action="store_true", help="also the two healthy runs")
    parser.add_argument("--capabilities", nargs="+", default=["default", "avx2", "best"])
    parser.add_argument("--healthy-capabilities", nargs="+", default=["best"])
    args = parser.parse_args()
    for capability in args.capabilities:
        for name, overrides in BROKEN.items():
            found = of("alert", train(capability, [*overrides, *FAST_EVALS]))
            if not found:
                print(f"{capability:8} {name:28} NO ALERT by step 40")
                continue
            first = found[0]
            lower = re.search(r"lower (train\.\w+)", first["message"])
            print(
                f"{capability:8} {name:28} step {first['step']:>3} {first['kind']:18} "
                f"lower {lower[1] if lower else '?'}"
            )
    healthy = {"defaults, 2,000 steps": ([], None), "nanoGPT's CPU setting": (NANOGPT, SHAKESPEARE)}
    for capability in args.healthy_capabilities if args.healthy else []:
        for name, (overrides, data) in healthy.items():
            events = train(capability, overrides, data)
            found = of("alert", events)
            kinds = ", ".join(f"{a['kind']} at {a['step']}" for a in found) or "none"
            final = of("eval", events)[-1]
            print(
                f"{capability:8} {name:28} alerts: {kinds}; final val {final['val_loss']:.3f}, "
                f"weights' RMS at most {peak_weight_scale(events):.2f}x 1/sqrt(d_model)"
            )


if __name__ == "__main__":
    main()

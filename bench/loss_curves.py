"""Validation loss against wall-clock time: the lesson's code and minigpt, same setting.

Trains both for --max-iters steps one after the other (nanoGPT's documented CPU
setting by default: char tokens of tinyshakespeare, context 64, batch 12,
d_model 128, 4 heads, 4 blocks, dropout 0, learning rate 1e-3), evaluating
every --eval-interval steps on eval_iters batches, and draws val loss against
seconds since the first evaluation into a PNG (matplotlib, the `bench`
extra). Prints each one's val loss at the last step and the time it took.

    python bench/loss_curves.py [--max-iters 2000] [--out docs/loss_vs_time.png]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from minigpt.config_text import toml_value

HERE = Path(__file__).parent
SHAKESPEARE = HERE.parent.parent / "shared" / "data" / "tinyshakespeare.txt"
SHAPE = ["--context-length", "64", "--batch-size", "12", "--d-model", "128"]
SHAPE += ["--num-heads", "4", "--num-blocks", "4", "--dropout", "0.0", "--learning-rate", "1e-3"]


def reference_curve(args: argparse.Namespace) -> list[tuple[float, float, int]]:
    """(seconds, val loss, step) at each of the lesson code's evals."""
    command = [sys.executable, str(HERE / "lesson_reference.py"), "--data", str(args.data)]
    command += ["--tokenizer", "char", *SHAPE, "--max-iters", str(args.max_iters)]
    command += ["--eval-interval", str(args.eval_interval)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    points = [json.loads(line) for line in output.splitlines()]
    start = points[0]["seconds"]
    return [(p["seconds"] - start, p["val"], p["step"]) for p in points]


def minigpt_curve(args: argparse.Namespace) -> list[tuple[float, float, int]]:
    """(seconds, val loss, step) at each of minigpt's evals, from its metrics.jsonl."""
    values = {
        "data.tokenizer": "char",
        "model.dropout": 0.0,
        "train.max_iters": args.max_iters,
        "train.eval_interval": args.eval_interval,
        "train.checkpoint_interval": args.max_iters,
        "sample.at_eval": False,
    }
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        command = [sys.executable, "-m", "minigpt", "train", "--run-dir", str(run_dir)]
        command += ["--data", str(args.data)]
        overrides = [f"{key}={toml_value(value)}" for key, value in values.items()]
        command += [flag for pair in overrides for flag in ("--set", pair)]
        subprocess.run(command, capture_output=True, text=True, check=True)
        events = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    evals = [e for e in events if e["event"] == "eval"]
    start = evals[0]["time"]
    return [(e["time"] - start, e["val_loss"], e["step"]) for e in evals]


def main() -> None:
    """Train both, print the end points, draw the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHAKESPEARE)
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--eval-interval", type=int, default=100)
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "loss_vs_time.png")
    args = parser.parse_args()
    curves = {"lesson's code": reference_curve(args), "minigpt": minigpt_curve(args)}
    for name, points in curves.items():
        seconds, val, step = points[-1]
        print(f"{name}: val loss {val:.4f} at step {step}, {seconds:.1f} s after the first eval")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=120)
    for name, points in curves.items():
        axes.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=name)
    axes.set_xlabel("seconds since the first evaluation")
    axes.set_ylabel("validation loss")
    axes.set_title(f"tinyshakespeare, char, nanoGPT's CPU setting, {args.max_iters} steps")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

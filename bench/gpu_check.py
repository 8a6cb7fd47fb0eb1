"""The CUDA path in one short check: speed, MFU and bf16 against fp32.

On a GPU machine, from the repository root:

    python bench/gpu_check.py [--steps 300] [--out DIR]

1. `minigpt bench` at a GPU-sized setting (char tokenizer on the built-in
   corpus, context 256, batch 64, d_model 384, 6 heads, 6 blocks) in float32
   (TF32 matmuls) and in bfloat16 autocast: tokens/s and MFU against the
   device's dense peak for that precision where the device is in PEAK_FLOPS.
2. `minigpt train` for --steps steps in each precision from the same seed:
   the final val losses and their relative difference (bf16 should agree with
   fp32 to a few percent).
Prints a report, and writes it to DIR/gpu_check.txt with --out. With
--device cpu it runs the same script on a CPU (a smoke test of the script).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from minigpt.config import Config, apply_values
from minigpt.config_text import toml_value
from minigpt.estimate import footprint
from minigpt.events import EvalEvent
from minigpt.rundir.layout import RunDir

SETTING = {
    "data.path": "builtin:python-docs",
    "data.tokenizer": "char",
    "model.context_length": 256,
    "train.batch_size": 64,
    "model.d_model": 384,
    "model.num_heads": 6,
    "model.num_blocks": 6,
    "model.dropout": 0.0,
    "sample.at_eval": False,
}
# Dense peak FLOP/s by device name fragment: (tf32, bf16), from the vendors' data sheets.
PEAK_FLOPS = {
    "H100 SXM": (494e12, 989e12),
    "H100": (378e12, 756e12),  # PCIe
    "H200": (494e12, 989e12),
    "A100": (156e12, 312e12),
    "L4": (60e12, 121e12),
}


def _flags(values: dict[str, object]) -> list[str]:
    """--set flags for dotted keys."""
    return [flag for key, v in values.items() for flag in ("--set", f"{key}={toml_value(v)}")]


def _minigpt(*args: str) -> str:
    """Run the CLI; its stdout (fails loudly with its stderr)."""
    command = [sys.executable, "-m", "minigpt", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"minigpt {' '.join(args[:1])} failed:\n{result.stderr}")
    return result.stdout


def peak_for(device_name: str, dtype: str) -> float | None:
    """The data-sheet dense peak for this device and precision, if known."""
    for fragment, (tf32, bf16) in PEAK_FLOPS.items():
        if fragment in device_name:
            return bf16 if dtype == "bfloat16" else tf32
    return None


def main() -> None:
    """Run both checks and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps per precision")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, help="also write the report to OUT/gpu_check.txt")
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    lines = [f"device: {name}, torch {torch.__version__}"]
    config = apply_values(Config(), SETTING)
    tokens_per_step = config.train.batch_size * config.model.context_length
    val_losses = {}
    for dtype in ("float32", "bfloat16"):
        values = SETTING | {"train.device": args.device, "train.dtype": dtype}
        bench = json.loads(
            _minigpt("bench", "--json", "--steps", "20", "--warmup", "5", *_flags(values))
        )
        flops_per_token = footprint(config, bench["vocab_size"]).flops_per_step / tokens_per_step
        peak = peak_for(name, dtype)
        mfu = f"{bench['tokens_per_sec'] * flops_per_token / peak:.0%}" if peak else "unknown peak"
        lines.append(
            f"{dtype}: {bench['tokens_per_sec']:,.0f} tokens/s, "
            f"{bench['ms_per_step_median']:.1f} ms/step, MFU {mfu}"
        )
        with tempfile.TemporaryDirectory() as folder:
            train = values | {"train.max_iters": args.steps, "train.eval_interval": args.steps}
            _minigpt("train", "--run-dir", folder, "--log-interval", "1000", *_flags(train))
            evals = [e for e in RunDir(folder).read_metrics() if isinstance(e, EvalEvent)]
            val_losses[dtype] = evals[-1].val_loss
    fp32, bf16 = val_losses["float32"], val_losses["bfloat16"]
    lines.append(
        f"val loss after {args.steps} steps: fp32 {fp32:.4f}, bf16 {bf16:.4f}, "
        f"relative difference {abs(bf16 - fp32) / fp32:.2%}"
    )
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.txt").write_text(report + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

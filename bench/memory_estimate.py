"""How close the Config pane's memory estimate is to what training really takes.

For each setting, in a fresh process: build the run (torch, corpus, model),
note the resident memory, train a few steps (the first includes an eval), and
compare the growth of peak resident memory with minigpt.estimate's figure.

    python bench/memory_estimate.py [--data PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile

SETTINGS = {
    "default": {},
    "lesson char": {"data.tokenizer": "char", "train.eval_iters": 1},
    "bigger char": {
        "data.tokenizer": "char",
        "model.context_length": 256,
        "model.d_model": 384,
        "model.num_heads": 6,
        "model.num_blocks": 6,
        "train.batch_size": 16,
        "train.eval_iters": 1,
    },
}


def measure(values: dict[str, object]) -> dict[str, float]:
    """Estimated and measured memory growth (MiB) of training under config values."""
    from minigpt.config import Config, apply_values
    from minigpt.estimate import footprint
    from minigpt.service.run import Run

    config = apply_values(Config(), values)
    run = Run.start(config, tempfile.mkdtemp())
    gc.collect()
    page = resource.getpagesize()
    with open("/proc/self/statm") as statm:
        before = int(statm.read().split()[1]) * page
    while run.trainer.step < 3:  # the first advance only evaluates
        run.advance()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    estimate = footprint(config, run.trainer.model.vocab_size).memory_bytes
    return {"estimate_mib": estimate / 2**20, "measured_mib": (peak - before) / 2**20}


def main() -> None:
    """Each setting in its own process, so peaks do not carry over."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="corpus for every setting (default: the built-in one)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one JSON setting
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(json.loads(args.one))))
        return
    print(f"{'setting':<14} {'estimate':>10} {'measured':>10} {'ratio':>6}")
    for name, values in SETTINGS.items():
        if args.data:
            values = {**values, "data.path": args.data}
        output = subprocess.run(
            [sys.executable, __file__, "--one", json.dumps(values)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        result = json.loads(output.strip().splitlines()[-1])
        ratio = result["measured_mib"] / result["estimate_mib"]
        print(
            f"{name:<14} {result['estimate_mib']:>7,.0f} MiB {result['measured_mib']:>6,.0f} MiB"
            f" {ratio:>6.2f}"
        )


if __name__ == "__main__":
    main()

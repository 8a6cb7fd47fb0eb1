"""minigpt against the lesson's code: tokens/s, the ratio, and MFU against this machine.

For each setting, runs bench/lesson_reference.py and `minigpt bench` alternately
(A B A B ...) for several rounds, each in a fresh process, and reports each
one's median tokens/s (tokens per step over the median step time), the median
of the per-round ratios, and the model FLOP/s achieved as a share of this
machine's fp32 matmul rate, measured in the same run (a 2048 x 2048 matmul,
best of 5): MFU against the real ceiling. FLOPs per token are counted the same
way for both, 6 per weight plus 12 * num_blocks * d_model * context_length
(minigpt.estimate), on minigpt's parameter count for the setting.

    python bench/compare.py [--settings lesson-compact lesson-full nanogpt bigger]
                            [--rounds 3] [--shakespeare PATH] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from minigpt.config import Config, apply_values
from minigpt.config_text import toml_value
from minigpt.corpus_text import load_text
from minigpt.estimate import footprint

HERE = Path(__file__).parent
SHAKESPEARE = HERE.parent.parent / "shared" / "data" / "tinyshakespeare.txt"
# Both sides do the same work a step: the lesson's optimizer, AdamW, and no running
# average of the weights. Muon and the average (minigpt's defaults) make each step dearer
# and the model better sooner; time_to_loss.py weighs that.
SAME_WORK = {"train.optimizer": "adamw", "train.ema_decay": 0}
LESSON_SHAPE = SAME_WORK | {
    "model.context_length": 64,
    "train.batch_size": 12,
    "model.d_model": 128,
    "model.num_heads": 4,
    "model.num_blocks": 4,
    "model.dropout": 0.1,  # the lesson's; minigpt's default is 0 now
}
# name: (minigpt keys, corpus ("builtin" or "shakespeare"), timed steps, warm-up steps)
SETTINGS = {
    "lesson-compact": (LESSON_SHAPE | {"data.compact_vocab": True}, "builtin", 20, 3),
    "lesson-full": (LESSON_SHAPE | {"data.compact_vocab": False}, "builtin", 8, 2),
    "nanogpt": (
        LESSON_SHAPE | {"data.tokenizer": "char", "model.dropout": 0.0},
        "shakespeare",
        40,
        5,
    ),
    "bigger": (
        SAME_WORK
        | {
            "model.context_length": 256,
            "train.batch_size": 16,
            "model.d_model": 384,
            "model.num_heads": 6,
            "model.num_blocks": 6,
            "model.dropout": 0.0,
            "data.tokenizer": "char",
        },
        "shakespeare",
        4,
        1,
    ),
}


def matmul_flops() -> float:
    """FLOP/s of a 2048 x 2048 fp32 matmul on this machine, best of 5."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(5))
    return 2 * 2048**3 / best


def _timed(work) -> float:
    """Seconds one call of work takes."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def reference_args(values: dict[str, object], corpus: Path, steps: int, warmup: int) -> list[str]:
    """bench/lesson_reference.py's command line for a setting."""
    flags = {
        "--context-length": values["model.context_length"],
        "--batch-size": values["train.batch_size"],
        "--d-model": values["model.d_model"],
        "--num-heads": values["model.num_heads"],
        "--num-blocks": values["model.num_blocks"],
        "--dropout": values.get("model.dropout", 0.1),
        "--tokenizer": "char" if values.get("data.tokenizer") == "char" else "cl100k_base",
        "--steps": steps,
        "--warmup": warmup,
        "--data": corpus,
    }
    command = [sys.executable, str(HERE / "lesson_reference.py")]
    return command + [str(part) for pair in flags.items() for part in pair]


def minigpt_args(values: dict[str, object], corpus: Path, steps: int, warmup: int) -> list[str]:
    """`minigpt bench`'s command line for a setting."""
    command = [sys.executable, "-m", "minigpt", "bench", "--json", "--steps", str(steps)]
    command += ["--warmup", str(warmup), "--data", str(corpus)]
    overrides = [f"{key}={toml_value(value)}" for key, value in values.items()]
    return command + [flag for pair in overrides for flag in ("--set", pair)]


def tokens_per_sec(command: list[str], tokens_per_step: int) -> float:
    """Run one benchmark process; tokens per step over its median step time."""
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return tokens_per_step / (result["ms_per_step_median"] / 1000)


def compare(name: str, corpora: dict[str, Path], rounds: int, peak: float) -> dict[str, object]:
    """One setting: alternate the two, print each round, return the summary."""
    values, corpus_name, steps, warmup = SETTINGS[name]
    corpus = corpora[corpus_name]
    config = apply_values(Config(), values | {"data.path": str(corpus)})
    tokens = config.train.batch_size * config.model.context_length
    vocab = _vocab_size(config, corpus)
    flops_per_token = footprint(config, vocab).flops_per_step / tokens
    reference, ours, ratios = [], [], []
    for number in range(1, rounds + 1):
        reference.append(tokens_per_sec(reference_args(values, corpus, steps, warmup), tokens))
        ours.append(tokens_per_sec(minigpt_args(values, corpus, steps, warmup), tokens))
        ratios.append(ours[-1] / reference[-1])
        print(
            f"  {name} round {number}: reference {reference[-1]:,.0f} tokens/s, "
            f"minigpt {ours[-1]:,.0f} tokens/s, ratio {ratios[-1]:.2f}",
            flush=True,
        )
    summary = {
        "setting": name,
        "reference_tokens_per_sec": statistics.median(reference),
        "minigpt_tokens_per_sec": statistics.median(ours),
        "ratio": statistics.median(ratios),
        "reference_mfu": statistics.median(reference) * flops_per_token / peak,
        "minigpt_mfu": statistics.median(ours) * flops_per_token / peak,
        "vocab_size": vocab,
    }
    return summary


def _vocab_size(config: Config, corpus: Path) -> int:
    """minigpt's vocabulary for the setting (what its FLOP count is based on)."""
    from minigpt.service.run import load_corpus

    return load_corpus(config).tokenizer.vocab_size


def main() -> None:
    """Compare the chosen settings and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shakespeare", type=Path, default=SHAKESPEARE)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        # The default corpus when the lesson's setting was first measured, as a file for both.
        builtin = Path(folder) / "python-docs.txt"
        builtin.write_text(load_text("builtin:python-docs")[0], encoding="utf-8")
        corpora = {"builtin": builtin, "shakespeare": args.shakespeare}
        peak = matmul_flops()
        print(f"fp32 matmul rate: {peak / 1e9:,.1f} GFLOP/s ({torch.get_num_threads()} threads)")
        results = [compare(name, corpora, args.rounds, peak) for name in args.settings]
    header = "setting | reference tokens/s | minigpt tokens/s | minigpt / reference | MFU ref | MFU"
    print(f"\n| {header} minigpt |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['setting']} | {r['reference_tokens_per_sec']:,.0f} | "
            f"{r['minigpt_tokens_per_sec']:,.0f} | {r['ratio']:.2f}x | "
            f"{r['reference_mfu']:.0%} | {r['minigpt_mfu']:.0%} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"matmul_flops": peak, "results": results}, indent=2))


if __name__ == "__main__":
    main()

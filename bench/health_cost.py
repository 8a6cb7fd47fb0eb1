"""What the training-health figures cost: step time with and without them.

Two settings: the default config (builtin python-docs, cl100k_base) and nanoGPT's
CPU setting (tinyshakespeare, char tokenizer, context 64, batch 12, 4 blocks,
4 heads, d_model 128, no dropout). For each, one run trains in this process and
alternates blocks of steps:

  with      Run.advance as it is: grad norm read with the loss, alerts fed each step
  without   the same, with the alerts switched off

alternating step by step. On a busy machine a step's own noise is far larger than
the alerts' microseconds, so they are also timed alone.
The gradient norm itself is the one clipping always computed; reading it shares
the loss's host sync, so the third figure is that read against loss.item()
alone. The per-eval figures (update ratios and weight norms; tokens per byte
once per run) are timed apart and spread over eval_interval steps, since an
eval's own noise would drown them in a step-time window. Ratios are of median
step times, per round, and the median over rounds is the headline.

    python bench/health_cost.py [--rounds 7] [--steps 40] [--shakespeare PATH]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from minigpt.config import Config, apply_values
from minigpt.events import StepEvent
from minigpt.health import block_health, tokens_per_byte
from minigpt.service.run import Run

SHAKESPEARE = Path(__file__).parent.parent.parent / "shared" / "data" / "tinyshakespeare.txt"
NANOGPT_CPU = {
    "model.context_length": 64,
    "train.batch_size": 12,
    "model.num_blocks": 4,
    "model.num_heads": 4,
    "model.d_model": 128,
    "model.dropout": 0.0,
    "data.tokenizer": "char",
}
FAR = 10**9  # an interval no timed step reaches: no eval or checkpoint in the window


def synthetic_corpus(path: Path, size: int = 1_100_000) -> Path:
    """A tinyshakespeare-sized text of speaker-headed lines, for machines without it."""
    rng = random.Random(0)
    words = "thou art my lord and i shall not speak of that which the king hath done"
    lines = []
    while sum(map(len, lines)) < size:
        speech = " ".join(rng.choice(words.split()) for _ in range(rng.randint(6, 14)))
        lines.append(f"{rng.choice(['KING', 'ROMEO', 'NURSE'])}:\n{speech.capitalize()}.\n\n")
    path.write_text("".join(lines), "utf-8")
    return path


def step_ms(run: Run, steps: int) -> float:
    """Median milliseconds of `steps` calls of run.advance."""
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        run.advance()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def median_ms(work: Callable[[], object], repeats: int = 21) -> float:
    """Median milliseconds of one call of work."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(name: str, config: Config, rounds: int, steps: int) -> None:
    """Alternate with and without alerts on one run, then time the per-eval figures."""
    eval_interval = config.train.eval_interval
    config = apply_values(
        config,
        {"train.max_iters": FAR, "train.eval_interval": FAR, "train.checkpoint_interval": FAR},
    )
    with tempfile.TemporaryDirectory() as folder:
        run = Run.start(config, Path(folder) / "run")
        feed = run.alerts.feed
        step_ms(run, 5)  # warm up: the step-0 eval, first allocations
        ratios, with_ms, without_ms = [], [], []
        for _ in range(rounds):  # step by step, so the machine's drift hits both alike
            times: dict[bool, list[float]] = {True: [], False: []}
            for i in range(2 * steps):
                run.alerts.feed = feed if i % 2 == 0 else lambda event: []  # type: ignore[method-assign]
                times[i % 2 == 0].append(step_ms(run, 1))
            with_ms.append(statistics.median(times[True]))
            without_ms.append(statistics.median(times[False]))
            ratios.append(with_ms[-1] / without_ms[-1])
        run.alerts.feed = feed
        event = next(e for e in run.advance() if isinstance(e, StepEvent))
        fed = median_ms(lambda: feed(event), 1001)
        t, corpus = run.trainer, run.trainer.corpus
        per_eval = median_ms(lambda: block_health(t.model.blocks, t.optimizers))
        once = median_ms(lambda: tokens_per_byte(corpus.tokenizer, corpus.train), 3)
        loss, norm = torch.tensor(2.0), torch.tensor(1.0)
        read = median_ms(lambda: torch.stack([loss, norm]).tolist(), 1001)
        read -= median_ms(loss.item, 1001)
        run.close()
    step = statistics.median(without_ms)
    print(f"{name}: step {step:.1f} ms (median over {rounds} rounds of {steps} steps)")
    print(f"  alerts per step: with/without ratio of medians {statistics.median(ratios):.4f}")
    print(f"  alerts per step, timed alone: {fed * 1000:.1f} us ({fed / step:.3%})")
    print(f"  norm read beside the loss: {read * 1000:+.1f} us per step ({read / step:+.3%})")
    spread = per_eval / eval_interval
    print(
        f"  update ratios + weight norms: {per_eval:.2f} ms per eval, {spread / step:.3%} "
        f"of a step over eval_interval {eval_interval}"
    )
    print(f"  tokens per byte, once per run (train split): {once:.1f} ms")


def main() -> None:
    """Measure both settings and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--shakespeare", type=Path, default=SHAKESPEARE)
    args = parser.parse_args()
    quiet = {"sample.at_eval": False}
    measure("default config", apply_values(Config(), quiet), args.rounds, args.steps)
    with tempfile.TemporaryDirectory() as folder:
        text = args.shakespeare
        if not text.is_file():
            text = synthetic_corpus(Path(folder) / "shakespeare.txt")
        nanogpt = apply_values(Config(), quiet | NANOGPT_CPU | {"data.path": str(text)})
        measure(f"nanoGPT CPU setting ({text.name})", nanogpt, args.rounds, args.steps)


if __name__ == "__main__":
    main()

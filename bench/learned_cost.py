"""What the learned views cost an eval, and how much they add to the run directory.

The default config (builtin python-docs, cl100k_base, context 64, 4 blocks of 4 heads,
eval_iters 20) trains a few steps in this process; then each round times the eval
(`estimate_loss`, which also keeps the val loss by position) and the views' record
(`LearnedViews.record`: the probe's losses and guesses, the head scores, the map)
back to back, in alternating order. The headline is the median over rounds of
record time / eval time, and the record's size as the run directory keeps it.

    python bench/learned_cost.py [--rounds 9] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from minigpt.config import load_config
from minigpt.events import LearnedEvent
from minigpt.learned.views import LearnedViews
from minigpt.service.run import Run


def seconds(work: Callable[[], object]) -> float:
    """Wall seconds of one call of work."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    """Print each round's times and the median ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    config = load_config(overrides=["train.max_iters=1000000", *args.set])
    with tempfile.TemporaryDirectory() as folder:
        run = Run.start(config, Path(folder) / "run")
        for _ in range(20):
            run.trainer.train_step()
        t = run.trainer
        views = LearnedViews.for_corpus(t.corpus, config.train.seed, config.model.context_length)
        kernels = torch.backends.cpu.get_cpu_capability()
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {kernels} kernels")
        print(f"vocab {t.corpus.tokenizer.vocab_size}, probe {len(views.probe_ids)} tokens, "
              f"map {len(views.map_ids)} tokens")  # fmt: skip
        records: list[LearnedEvent] = []
        ratios = []
        for round_ in range(args.rounds):
            measure = lambda: records.append(views.record(t.eval_model, t.step, t.position_loss))  # noqa: E731
            if round_ % 2:
                views_s, eval_s = seconds(measure), seconds(t.estimate_loss)
            else:
                eval_s, views_s = seconds(t.estimate_loss), seconds(measure)
            ratios.append(views_s / eval_s)
            print(f"round {round_ + 1}: eval {eval_s * 1000:.0f} ms, "
                  f"views {views_s * 1000:.0f} ms, ratio {ratios[-1]:.3f}")  # fmt: skip
        size = len(json.dumps(records[-1].to_dict(), separators=(",", ":")).encode())
        probe = len(json.dumps(views.probe(), ensure_ascii=False).encode())
        print(f"median views / eval: {statistics.median(ratios):.3f} "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f})")  # fmt: skip
        print(f"a record: {size / 1000:.1f} KB per eval; probe.json {probe / 1000:.1f} KB per run")
        run.close()


if __name__ == "__main__":
    main()

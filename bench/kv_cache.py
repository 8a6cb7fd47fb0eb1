"""What the KV cache buys when generating: tokens/s with and without it.

Builds the default model shape at context_length 256 (random weights: speed
does not depend on what the model learned) and generates --tokens new tokens
from a one-token prompt, alternating cached and uncached runs for several
rounds, as `minigpt sample` and `minigpt sample --no-kv-cache` do. Prints each
round and the median of the per-round speed-ups. Both paths use the same
window rule past the context, so they produce the same tokens (checked here).

    python bench/kv_cache.py [--tokens 500] [--context 256] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from minigpt.config import Config, apply_values
from minigpt.model import Model

VOCAB = 6337  # the default corpus's compact cl100k vocabulary


def generate(model: Model, tokens: int, use_cache: bool) -> tuple[float, list[int]]:
    """Seconds to stream `tokens` new tokens greedily, and the tokens."""
    prompt = torch.zeros((1, 1), dtype=torch.long)
    started = time.perf_counter()
    out = [int(t) for t, _ in model.stream(prompt, tokens, temperature=0.0, use_cache=use_cache)]
    return time.perf_counter() - started, out


def main() -> None:
    """Alternate cached and uncached generation; report tokens/s and the speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = apply_values(Config(), {"model.context_length": args.context, "model.dropout": 0.0})
    model = Model(config.model, VOCAB).eval()
    generate(model, 20, True)  # warm up both paths
    generate(model, 20, False)
    ratios = []
    print(f"{args.tokens} new tokens, context_length {args.context}, d_model 128, 4 blocks")
    for round_number in range(1, args.rounds + 1):
        cached_s, cached = generate(model, args.tokens, use_cache=True)
        full_s, full = generate(model, args.tokens, use_cache=False)
        assert cached == full, "cached and uncached generation must give the same tokens"
        ratios.append(full_s / cached_s)
        print(
            f"round {round_number}: cached {args.tokens / cached_s:,.0f} tokens/s, "
            f"uncached {args.tokens / full_s:,.0f} tokens/s, speed-up {ratios[-1]:.2f}x"
        )
    print(f"median speed-up {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()

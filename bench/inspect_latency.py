"""How long `minigpt inspect` takes to look inside the default model: median of 20 runs.

Builds the default model shape (minigpt/config.py's [model] defaults, random
weights: speed does not depend on what the model learned) over the default
corpus's compact cl100k vocabulary, or the full one with --full-vocab, and
inspects a --tokens-token prompt with every block's attention weights, as
`minigpt inspect --attention 0:0` does. The target is under 100 ms on a laptop CPU.

    python bench/inspect_latency.py [--tokens 64] [--runs 20] [--threads 2] [--full-vocab]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from minigpt.config import ModelConfig
from minigpt.inspection import inspect_next
from minigpt.model import Model
from minigpt.tokenizer import Cl100kTokenizer

VOCAB = 6337  # the default corpus's compact cl100k vocabulary


def main() -> None:
    """Time inspect_next on a prompt of --tokens tokens; print each run's median."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-vocab", action="store_true", help="all 100,277 cl100k ids")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = Cl100kTokenizer(None if args.full_vocab else range(VOCAB))
    model = Model(ModelConfig(), tokenizer.vocab_size)
    # A prompt of exactly --tokens tokens: decode that many ids and check it encodes back.
    prompt = tokenizer.decode(list(range(1000, 1000 + args.tokens)))
    while len(tokenizer.encode(prompt)) > args.tokens:
        prompt = prompt[:-1]
    tokens = len(tokenizer.encode(prompt))
    inspect_next(model, tokenizer, prompt, attention=True)  # warm up
    durations = []
    for _ in range(args.runs):
        started = time.perf_counter()
        inspect_next(model, tokenizer, prompt, temperature=0.8, top_k=40, top_p=0.9, attention=True)
        durations.append(time.perf_counter() - started)
    print(
        f"inspect: {tokens}-token prompt, vocab {tokenizer.vocab_size:,}, "
        f"{torch.get_num_threads()} threads: median {statistics.median(durations) * 1000:.1f} ms "
        f"over {args.runs} runs (min {min(durations) * 1000:.1f}, max {max(durations) * 1000:.1f})"
    )


if __name__ == "__main__":
    main()

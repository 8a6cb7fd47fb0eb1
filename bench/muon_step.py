"""One Muon update of the lesson's block matrices: torch.optim.Muon against StackedMuon.

The 16 weight matrices of nanoGPT's CPU setting (4 blocks of d_model 128: q/k/v
384x128, projection 128x128, feed-forward 512x128 and 128x512), random gradients;
each optimizer steps --steps times per round, rounds alternate, and the medians of
the per-round mean step times are printed with their ratio.

    python bench/muon_step.py [--rounds 5] [--steps 40]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from minigpt.optimizers import StackedMuon

SHAPES = [(384, 128), (128, 128), (512, 128), (128, 512)] * 4


def mean_step_ms(kind: type[torch.optim.Muon], steps: int) -> float:
    """Mean milliseconds of one step of a fresh optimizer, after three warm-up steps."""
    weights = [torch.nn.Parameter(0.02 * torch.randn(*shape)) for shape in SHAPES]
    for weight in weights:
        weight.grad = torch.randn_like(weight)
    optimizer = kind(weights, lr=0.01, weight_decay=0.0)
    for _ in range(3):
        optimizer.step()
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return 1000 * (time.perf_counter() - started) / steps


def main() -> None:
    """Alternate the two, print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"torch.optim.Muon": [], "StackedMuon": []}
    for _ in range(args.rounds):
        times["torch.optim.Muon"].append(mean_step_ms(torch.optim.Muon, args.steps))
        times["StackedMuon"].append(mean_step_ms(StackedMuon, args.steps))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name}: median {median:.2f} ms a step over {args.rounds} rounds")
    ratio = medians["StackedMuon"] / medians["torch.optim.Muon"]
    print(f"StackedMuon / torch.optim.Muon: {ratio:.2f}")


if __name__ == "__main__":
    main()

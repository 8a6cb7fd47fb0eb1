"""Muon's Newton-Schulz iteration in bfloat16 against float32 on this CPU.

StackedMuon orthogonalises in bfloat16 only where bfloat16 products are native
(minigpt.optimizers.native_bfloat16); this shows why. For one stack of each of the
block matrices of d_model 128 (the lesson's) and 256, it times `orthogonalise` both
ways, rounds alternating, and prints the median milliseconds and their ratio.

    python bench/muon_precision.py [--rounds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from minigpt import optimizers

COEFFICIENTS, STEPS, EPS = (3.4445, -4.775, 2.0315), 5, 1e-7


def stack_ms(d_model: int, native: bool) -> float:
    """Milliseconds to orthogonalise one stack of each block shape (4 blocks' worth)."""
    optimizers.native_bfloat16 = lambda device_type: native  # type: ignore[assignment]
    shapes = [(3 * d_model, d_model), (d_model, d_model), (4 * d_model, d_model)]
    shapes.append((d_model, 4 * d_model))
    stacks = [torch.randn(4, *shape) for shape in shapes]
    started = time.perf_counter()
    for stack in stacks:
        optimizers.orthogonalise(stack, COEFFICIENTS, STEPS, EPS)
    return 1000 * (time.perf_counter() - started)


def main() -> None:
    """Alternate the two precisions, print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__}, {cpu} kernels, {args.threads} thread(s)")
    print(f"native bfloat16 here: {optimizers.native_bfloat16('cpu')}")
    for d_model in (128, 256):
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for native in (True, False):
                times[native].append(stack_ms(d_model, native))
        bf16, f32 = (statistics.median(times[native]) for native in (True, False))
        print(
            f"d_model {d_model}: bfloat16 {bf16:,.1f} ms, float32 {f32:,.1f} ms "
            f"(bfloat16 / float32 = {bf16 / f32:.1f})"
        )


if __name__ == "__main__":
    main()

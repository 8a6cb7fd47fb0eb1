"""How long a dashboard waits for the odds while the engine trains, and what that costs
the training steps.

Starts an engine on the default config (or --set overrides) and trains. First it
only listens, timing N steps; then it sends `inspect` for a 64-token prompt N
times, back to back, timing each from the command to its inspection event and
noting the steps trained meanwhile. The inspector answers on a thread of its own
from the weights of the last finished step, so no answer waits for the step under
way; the steps beside it share the CPU with it.

    python bench/inspect_while_training.py [--times 30] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from minigpt.events import ErrorEvent, Event, InspectionEvent, StepEvent
from minigpt.service.client import Client

PROMPT = "The for statement in Python differs a bit from what you may be used to in C. " * 4


def answered(request: str, steps: list[float]) -> Callable[[Event], bool]:
    """A test for the reply to this request (the odds, or an error) that keeps the
    ms_per_step of each step event passed on the way."""

    def test(event: Event) -> bool:
        if isinstance(event, StepEvent) and event.ms_per_step is not None:
            steps.append(event.ms_per_step)
        return isinstance(event, (InspectionEvent, ErrorEvent)) and event.id == request

    return test


def main() -> None:
    """Print the median and worst round trip, and the step times without and with them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=30)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        flags = [flag for pair in args.set for flag in ("--set", pair)]
        client = Client.spawn(Path(folder) / "run", flags, timeout=300)
        try:
            client.send("start")
            client.wait_for(StepEvent, 120)  # the first step warms up
            alone = [client.wait_for(StepEvent).ms_per_step for _ in range(args.times)]
            times, beside, answer = [], [], None
            for _ in range(args.times):
                started = time.perf_counter()
                request = client.send("inspect", prompt=PROMPT)
                answer = client.wait_for(answered(request, beside))
                times.append(1000 * (time.perf_counter() - started))
            assert isinstance(answer, InspectionEvent), answer
            print(
                f"{len(answer.prompt_ids)}-token prompt: median {statistics.median(times):.1f} ms, "
                f"worst {max(times):.1f} ms over {args.times} inspections"
            )
            print(
                f"steps: median {statistics.median(alone):.1f} ms over {len(alone)} alone, "
                f"{statistics.median(beside):.1f} ms over {len(beside)} beside the inspections "
                f"({statistics.median(beside) / statistics.median(alone):.2f}x)"
            )
        finally:
            client.send("shutdown", save=False)
            client.close()
            if client.process is not None:
                client.process.wait(60)


if __name__ == "__main__":
    main()

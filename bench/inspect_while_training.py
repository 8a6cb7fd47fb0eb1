"""How long a dashboard waits for the odds while the engine trains.

Starts an engine on the default config (or --set overrides), trains, and sends
`inspect` for a 64-token prompt N times, timing each from the command to its
inspection event: the engine answers between two training steps, so this includes
waiting for the step under way.

    python bench/inspect_while_training.py [--times 15] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from minigpt.client import Client
from minigpt.events import ErrorEvent, Event, InspectionEvent, StepEvent

PROMPT = "The for statement in Python differs a bit from what you may be used to in C. " * 4


def answered(request: str) -> Callable[[Event], bool]:
    """A test for the reply to this request (the odds, or an error)."""
    return lambda event: isinstance(event, (InspectionEvent, ErrorEvent)) and event.id == request


def main() -> None:
    """Print the median and worst round trip of the inspections."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=15)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        flags = [flag for pair in args.set for flag in ("--set", pair)]
        client = Client.spawn(Path(folder) / "run", flags, timeout=300)
        try:
            client.send("start")
            step = client.wait_for(StepEvent, 120)
            times, answer = [], None
            for _ in range(args.times):
                started = time.perf_counter()
                request = client.send("inspect", prompt=PROMPT)
                answer = client.wait_for(answered(request))
                times.append(1000 * (time.perf_counter() - started))
            assert isinstance(answer, InspectionEvent), answer
            print(
                f"{len(answer.prompt_ids)}-token prompt, training at "
                f"~{step.ms_per_step:.0f} ms/step: "
                f"median {statistics.median(times):.1f} ms, worst {max(times):.1f} ms "
                f"over {args.times} inspections"
            )
        finally:
            client.send("shutdown", save=False)
            client.close()
            if client.process is not None:
                client.process.wait(60)


if __name__ == "__main__":
    main()

"""Time from launching minigpt-tui to its first frame, in a real terminal (tmux).

Each launch starts the dashboard on a fresh run directory, so it also starts
an engine; the first frame must not wait for it. The clock runs from the
tmux launch until the header's title is on screen. Needs tmux.

    python bench/first_frame.py [--launches 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TUI = Path(sys.executable).parent / "minigpt-tui"


def first_frame_seconds() -> float:
    """One launch: seconds until 'minigpt-tui' shows on the terminal."""
    server = f"minigpt-ff-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", server, "-f", "/dev/null"]
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        started = time.perf_counter()
        subprocess.run(
            [
                *tmux,
                "new-session",
                "-d",
                "-x",
                "100",
                "-y",
                "30",
                f"exec {TUI} --run-dir {run_dir}",
            ],
            check=True,
        )
        try:
            while True:
                shown = subprocess.run(
                    [*tmux, "capture-pane", "-p"], capture_output=True, text=True
                ).stdout
                if "minigpt-tui" in shown:
                    return time.perf_counter() - started
                if time.perf_counter() - started > 30:
                    raise SystemExit("no frame within 30 s")
                time.sleep(0.01)
        finally:
            subprocess.run([*tmux, "kill-server"], capture_output=True)
            # The engine it started may still be loading: stop it before the next launch.
            subprocess.run(["pkill", "-f", str(run_dir)], capture_output=True)
            time.sleep(1)


def main() -> None:
    """Launch several times and print the median."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=5)
    args = parser.parse_args()
    times = []
    for _ in range(args.launches):
        times.append(first_frame_seconds())
        print(f"first frame after {times[-1]:.2f} s", flush=True)
    print(f"median {statistics.median(times):.2f} s over {args.launches} launches")


if __name__ == "__main__":
    main()

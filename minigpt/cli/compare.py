"""`minigpt compare RUN RUN...`: what differs between runs, and how far each got.

One row per run: its folder name, its value of each config key whose values differ
between the runs (minigpt/rundir/differences.py says which keys count), its best val
loss, the step of the first eval that reached it, and the training time by then (the
seconds its steps took, across resumes: pauses, evals and restarts do not count, so a
run paused overnight compares fairly). `--json` prints the same as one object. A run
whose folder or config cannot be read stops the command with one line naming it.
Torch-free: it reads the runs' files only.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from minigpt.display import cells, duration, number, setting, token_label
from minigpt.events import EvalEvent
from minigpt.rundir.differences import differences
from minigpt.rundir.history_index import HistoryIndex
from minigpt.rundir.layout import RunDir


@dataclass
class Standing:
    """How far a run got: its best val loss, and the step and training time that reached it."""

    run_dir: str
    name: str
    best_val_loss: float | None
    best_step: int | None
    seconds_to_best: float | None

    @classmethod
    def of(cls, path: Path) -> Standing:
        """From the run's index of metrics.jsonl (brought up to date first)."""
        best: EvalEvent | None = None
        run_dir = RunDir(path)
        if run_dir.metrics.is_file():
            index = HistoryIndex(run_dir)
            try:
                index.sync()
                best = index.best_eval()
            finally:
                index.close()
        name = path.resolve().name
        if best is None:
            return cls(str(path), name, None, None, None)
        return cls(str(path), name, best.val_loss, best.step, best.elapsed)


def add_compare_parser(commands: Any) -> None:
    """The `compare` subcommand's arguments: two runs at least."""
    compare = commands.add_parser(
        "compare", help="what differs between runs, and each one's best val loss"
    )
    compare.add_argument("first", metavar="RUN", help="a run directory")
    compare.add_argument("others", nargs="+", metavar="RUN", help="the runs to compare it with")
    compare.add_argument("--json", action="store_true", help="one JSON object")
    compare.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    """Print the runs' differing settings and best val losses, as a table or JSON."""
    paths = [Path(args.first), *map(Path, args.others)]
    differs = differences([RunDir(path).read_config() for path in paths])
    standings = [Standing.of(path) for path in paths]
    if args.json:
        runs = [asdict(standing) for standing in standings]
        print(json.dumps({"differs": differs, "runs": runs}, ensure_ascii=False))
    else:
        print("\n".join(as_text(differs, standings)))
    return 0


def as_text(differs: dict[str, list[Any]], standings: list[Standing]) -> list[str]:
    """A table: one row per run, a column per differing key, then the best and when."""
    header = ["run", *differs, "best val", "step", "time to best"]
    rows = [
        [
            standing.name,
            *(setting(values[i]) for values in differs.values()),
            number(standing.best_val_loss, ".4f"),
            number(standing.best_step, ","),
            duration(standing.seconds_to_best),
        ]
        for i, standing in enumerate(standings)
    ]
    figures = len(header) - 3  # the columns from here on are numbers, aligned right
    widths = [max(cells(row[c]) for row in (header, *rows)) for c in range(len(header))]
    lines = [] if differs else ["no setting differs between these runs"]
    for row in (header, *rows):
        shown = [
            token_label(cell, width, "<" if c < figures else ">")
            for c, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(shown).rstrip())
    return lines

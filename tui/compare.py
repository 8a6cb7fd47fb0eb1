"""Compare runs: other run directories' val curves drawn on this run's loss chart.

A learner changes one thing and starts another run; seeing both val curves on
one chart shows what the change did. The candidates are this run's siblings
(the other folders under the same `runs/`) that have a metrics.jsonl; their
evaluations (with the tokens seen and training time of each) and their configs
are read when picked, the evaluations from their indexes, so finished and live
runs alike can be compared (pick again to refresh a live one), however long.
tui/compare_table.py names them by what differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static
from textual.worker import WorkerCancelled

from minigpt.config import Config
from minigpt.errors import MiniGPTError
from minigpt.events import EvalEvent
from minigpt.rundir.history import History
from minigpt.rundir.history_index import Progress
from minigpt.rundir.layout import RunDir


def other_runs(run_dir: Path) -> list[Path]:
    """Sibling run directories with a history, by name."""
    parent = run_dir.resolve().parent
    if not parent.is_dir():
        return []
    here = run_dir.resolve()
    return sorted(
        path
        for path in parent.iterdir()
        if path.is_dir() and path.resolve() != here and RunDir(path).metrics.is_file()
    )


@dataclass
class Compared:
    """A run picked for comparison: its folder name, its evaluations spread over its whole
    history, and its config (None when it cannot be read, and why)."""

    name: str
    evals: list[EvalEvent]
    config: Config | None
    problem: str | None = None

    @classmethod
    def read(cls, run_dir: Path, progress: Progress | None = None) -> Compared:
        """The run's evaluations and config, from its files."""
        run = RunDir(run_dir)
        evals = History.read(run, progress).evals
        try:
            return cls(run_dir.name, evals, run.read_config())
        except MiniGPTError as error:
            return cls(run_dir.name, evals, None, str(error))


def read_compared(
    run_dirs: list[Path], say: Callable[[str], None], cancelled: Callable[[], bool]
) -> list[Compared]:
    """Each run, read. A run that has to be indexed first (one from before indexes, or
    whose index is of an older version or was deleted) has its progress said; `cancelled`
    stops the work between two steps of it (what was indexed stays)."""

    def progress(run_dir: Path) -> Progress:
        def report(stage: str, fraction: float) -> None:
            if cancelled():
                raise WorkerCancelled()
            say(f"{run_dir.name}: {stage} {fraction:.0%}")

        return report

    return [Compared.read(path, progress(path)) for path in run_dirs]


class CompareScreen(ModalScreen[list[str] | None]):
    """Pick the runs whose val curves to overlay; answers with their folder names."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "show", "Show", priority=True),  # before the list takes it
        Binding("escape", "dismiss(None)", "Cancel"),
    ]

    def __init__(self, candidates: list[Path], chosen: list[str]) -> None:
        """Offer the candidates, with the ones already shown ticked."""
        super().__init__()
        self.candidates = candidates
        self.chosen = chosen

    def compose(self) -> ComposeResult:
        """The list of runs, or why there is none."""
        with Vertical(id="compare-box"):
            yield Static("Compare val loss with other runs", classes="dialog-title")
            if self.candidates:
                yield SelectionList[str](
                    *((path.name, path.name, path.name in self.chosen) for path in self.candidates),
                    id="compare-runs",
                )
                hint = "space ticks a run · enter shows the ticked ones · escape cancels"
            else:
                yield Static("No other run with a history sits beside this one.", id="compare-none")
                hint = "escape closes this"
            yield Static(hint, classes="dialog-hint")

    def action_show(self) -> None:
        """enter: overlay the ticked runs."""
        if not self.candidates:
            self.dismiss(None)
            return
        self.dismiss(list(self.query_one(SelectionList).selected))

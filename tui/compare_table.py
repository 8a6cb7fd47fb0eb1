"""Runs named by what differs: the loss chart's legend and the table under it while runs are
compared.

Which keys differ is minigpt/rundir/differences.py's rule. The dashboard shortens each key
to its last part, a few as people write them (learning_rate as lr): a compared run's legend
is where it differs from this run, `activation=relu2, lr=0.02` (at most LEGEND_SETTINGS of
them, then how many more), or its folder name when nothing differs or its config cannot be
read. The table lists this run and each compared one, in its curve's colour, with its value
of every key that differs between any of them.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from minigpt.config import Config, flat_values
from minigpt.display import cells, setting
from minigpt.rundir.differences import differences
from tui.charts import overlay_color
from tui.compare import Compared

SHORT = {"learning_rate": "lr", "muon_learning_rate": "muon_lr", "grad_accum_steps": "accum"}
LEGEND_SETTINGS = 3  # settings a legend names; the table has them all
VALUE_CELLS = 16  # a longer value (a corpus path) keeps its end in a legend
THIS_RUN_COLOR = "orange1"  # this run's val points


def short_key(key: str) -> str:
    """A dotted key as the legend and the table name it: its last part, a few shortened."""
    last = key.rpartition(".")[2]
    return SHORT.get(last, last)


def short_value(value: Any) -> str:
    """A setting as a legend shows it: a long one cut to its end."""
    text = setting(value)
    if cells(text) <= VALUE_CELLS:
        return text
    while cells(text) > VALUE_CELLS - 1:
        text = text[1:]
    return f"…{text}"


def legend(this: Config | None, run: Compared) -> str:
    """A compared run's name in the legend: where it differs from this run, else its folder."""
    if this is None or run.config is None:
        return run.name
    differs = differences([this, run.config])
    named = [f"{short_key(key)}={short_value(values[1])}" for key, values in differs.items()]
    if not named:
        return run.name
    more = len(named) - LEGEND_SETTINGS
    return ", ".join(named[:LEGEND_SETTINGS]) + (f" +{more}" if more > 0 else "")


def table(name: str, this: Config | None, runs: list[Compared]) -> Table:
    """This run (by folder name) and the compared ones, each with its value of every key
    that differs between any of them ("?" where a config cannot be read)."""
    readable = [config for config in (this, *(run.config for run in runs)) if config is not None]
    keys = list(differences(readable))
    grid = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    grid.add_column("run" if keys else "run · no setting differs", no_wrap=True)
    for key in keys:
        grid.add_column(short_key(key), no_wrap=True, overflow="ellipsis")
    rows = [(name, this, THIS_RUN_COLOR)]
    rows += [(run.name, run.config, overlay_color(i)) for i, run in enumerate(runs)]
    for shown, config, color in rows:
        values = [values_of(config, key) for key in keys]
        grid.add_row(Text(shown, style=color), *values)
    return grid


def values_of(config: Config | None, key: str) -> str:
    """A config's value of a dotted key, as written; "?" without a config."""
    if config is None:
        return "?"
    return setting(flat_values(config)[key])


class CompareTable(Static):
    """The runs compared and what differs between them; shown while a comparison is."""

    def show(self, name: str, this: Config | None, runs: list[Compared]) -> None:
        """Draw the table of this run (its folder name, its config) and the compared ones."""
        self.update(table(name, this, runs))

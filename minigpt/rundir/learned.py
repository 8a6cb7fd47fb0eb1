"""The learned views' records in a run directory: runs/NAME/learned/.

    learned/probe.json            chosen at the run's start: the probe passage's token ids and
                                  text, and every token id's text ({"ids", "text", "vocab"})
    learned/step-000001500.json   one eval's record: a `learned` event (minigpt/events.py)

One file per eval, written whole (temporary file, rename), so a record is either
all there or absent, finding one eval's record costs the same at any run length, and
a resumed run drops the records of the steps it lost by deleting their files. Each
record holds the probe's losses and top guesses for about a thousand tokens, so it
takes about 60-80 KB at the default config (docs/learned.md has the measured size).

Readers take what they find: a record decodes as events do (a value of the wrong type
reads as empty, None in a list of numbers), a file that is no JSON object is passed
over, and so is a file named otherwise. Torch-free, as the run directory is.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from minigpt.atomic import write_text_atomic
from minigpt.events import LearnedEvent, decode

FOLDER = "learned"
PROBE = "probe.json"
_RECORD = re.compile(r"step-(\d{9,})\.json")


def record_name(step: int) -> str:
    """The file name of step's record: sorted by name is sorted by step."""
    return f"step-{step:09d}.json"


def _read_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in path, or None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class LearnedRecords:
    """The learned/ folder of one run directory."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        """The records of the run in run_dir (the folder may not exist yet)."""
        self.path = Path(run_dir) / FOLDER

    def write_probe(self, probe: dict[str, Any]) -> None:
        """Keep the run's probe passage."""
        self.path.mkdir(mode=0o700, exist_ok=True)
        write_text_atomic(self.path / PROBE, json.dumps(probe, ensure_ascii=False))

    def probe(self) -> dict[str, Any] | None:
        """The run's probe passage, or None for a run without one."""
        return _read_object(self.path / PROBE)

    def write(self, record: LearnedEvent) -> None:
        """Keep one eval's record."""
        assert record.step is not None, "a record names its step"
        self.path.mkdir(mode=0o700, exist_ok=True)
        text = json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":"))
        write_text_atomic(self.path / record_name(record.step), text)

    def steps(self) -> list[int]:
        """The steps that have a record, in order."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return []
        return sorted(int(m.group(1)) for name in names if (m := _RECORD.fullmatch(name)))

    def record(self, step: int) -> LearnedEvent | None:
        """The record of exactly this step, or None."""
        return self._decoded(step, None)

    def summary(self, step: int) -> LearnedEvent | None:
        """The record of this step with only its context gain and head roles read (quick to
        decode: what a history across many evals needs)."""
        return self._decoded(step, ("context_gain", "heads"))

    def _decoded(self, step: int, keys: tuple[str, ...] | None) -> LearnedEvent | None:
        """The record file of step decoded, with only `keys` when given; None without one."""
        data = _read_object(self.path / record_name(step))
        if data is None:
            return None
        if keys is not None:
            data = {key: data.get(key) for key in keys}
        # The file's name says which step it is.
        record = decode(data | {"event": LearnedEvent.name, "step": step})
        return record if isinstance(record, LearnedEvent) else None

    def at_or_before(self, step: int | None) -> LearnedEvent | None:
        """The last record at or before step (None: the last of all), or None if there is none."""
        steps = [s for s in self.steps() if step is None or s <= step]
        return self.record(steps[-1]) if steps else None

    def clear(self) -> None:
        """Remove every record and the probe (a new run in this folder starts afresh)."""
        self.truncate_after(-1)
        (self.path / PROBE).unlink(missing_ok=True)

    def truncate_after(self, step: int) -> None:
        """Remove the records of steps after step (work a resumed run lost)."""
        for later in self.steps():
            if later > step:
                (self.path / record_name(later)).unlink(missing_ok=True)

"""What differs between runs: the config keys whose values are not the same in all of them.

A comparison names runs by what made them differ, so a key counts only if it can change
what the run trained or how its losses were measured. Not counted:

- `notify.*`: who is told of the run;
- `sample.*`: the completions at evals, drawn with their own random generator;
- `train.threads`, `train.checkpoint_interval`, `train.learned_views`: how fast it ran,
  how often it saved, what else it measured (with no randomness); the weights and
  the losses are the same.

`data.path` is compared as the file it names: `corpus.txt`, `./corpus.txt` and its
absolute path are one corpus (a relative path is taken from the current folder, where
the engines are started); a `builtin:` name is compared as written. Values are shown
as each run's config.toml writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from minigpt.config import Config, flat_values

NOT_COUNTED_SECTIONS = ("notify", "sample")
NOT_COUNTED_KEYS = ("train.threads", "train.checkpoint_interval", "train.learned_views")


def counts(key: str) -> bool:
    """Whether a dotted key can make runs differ in what they trained or measured."""
    return key.partition(".")[0] not in NOT_COUNTED_SECTIONS and key not in NOT_COUNTED_KEYS


def differences(configs: Sequence[Config]) -> dict[str, list[Any]]:
    """{dotted key: each config's value, in order} for each counted key whose values are not
    all the same, in declaration order (empty for fewer than two configs)."""
    flats = [flat_values(config) for config in configs]
    if len(flats) < 2:
        return {}
    return {
        key: [flat[key] for flat in flats]
        for key in flats[0]
        if counts(key) and len({_compared(key, flat[key]) for flat in flats}) > 1
    }


def _compared(key: str, value: Any) -> Any:
    """The value as compared: data.path as the file it names, any other as it is."""
    if key == "data.path" and not str(value).startswith("builtin:"):
        return str(Path(value).expanduser().resolve())
    return value

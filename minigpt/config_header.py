"""The comments at the top of the config files minigpt writes: what each file is, and (where
it is one to edit) which changes need a fresh model.

Four files carry one: the shipped defaults (DEFAULT_HEADER), a run's own config.toml, which
its engine rewrites when a change applies (RUN_HEADER), the dashboard's running config and
the files saved from it (RUNNING_HEADER), and an exported model's card (EXPORTED_HEADER).
The sentence on which keys apply at the next step is written from the keys' own
rule (config.is_hot), so a key that changes its rule changes the sentence.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from minigpt import config


def _sections() -> dict[str, list[str]]:
    """Each section's keys, in declaration order."""
    sections: dict[str, list[str]] = {}
    for dotted in config.all_keys():
        section, _, key = dotted.partition(".")
        sections.setdefault(section, []).append(key)
    return sections


_COUNTS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _listed(items: Sequence[str]) -> str:
    """Items as prose: "a", "a and b", "a, b and c"."""
    return items[-1] if len(items) < 2 else f"{', '.join(items[:-1])} and {items[-1]}"


def _restart_rule() -> str:
    """The sentence saying which keys apply at the next step and which need a fresh model."""
    hot: list[str] = []
    fresh: list[str] = []
    excepted = 0  # restart keys named as the exceptions of a mostly hot section
    for section, fields in _sections().items():
        cold = [key for key in fields if not config.is_hot(f"{section}.{key}")]
        warm = [key for key in fields if key not in cold]
        if len(warm) >= len(cold):
            hot.append(f"[{section}]" + (f" (but {', '.join(cold)})" if cold else ""))
            excepted += len(cold)
        else:
            hot += [f"{section}.{key}" for key in warm]
            fresh.append(f"[{section}]" + (f" (but {', '.join(warm)})" if warm else ""))
    if excepted:
        count = _COUNTS[excepted] if excepted < len(_COUNTS) else str(excepted)
        fresh.append("that key" if excepted == 1 else f"those {count} keys")
    assert hot and fresh, "the sentence needs both hot and restart keys; reword it for this schema"
    return (
        f"Changes to {_listed(hot)} apply at the next step; "
        f"changes to {_listed(fresh)} need a fresh model."
    )


def restart_rule_comment() -> str:
    """Which keys apply at the next step and which need a fresh model, as TOML comment lines."""
    return "".join(f"# {line}\n" for line in textwrap.wrap(_restart_rule(), 98))


DEFAULT_HEADER = """\
# minigpt default configuration. Every key is optional: a missing key takes the value shown here.
# Change a key for one run with an override such as  train.max_iters=500  (section.key=value).
""" + restart_rule_comment()

RUN_HEADER = """\
# The configuration this run uses, rewritten by its engine whenever a change applies.
# Start a new run from it with:  minigpt train --config THIS_FILE --run-dir NEW_DIR
"""

RUNNING_HEADER = (
    "# The running configuration. Edit it, then ctrl+s applies, ctrl+r reverts, ctrl+o saves"
    " to a file.\n" + restart_rule_comment()
)

EXPORTED_HEADER = "# The configuration this model was trained with (minigpt-tui)."

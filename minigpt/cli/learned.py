"""`minigpt learned`: what a run's model had learned at an eval, as text or JSON.

Reads the records the run keeps in learned/ (minigpt/rundir/learned.py) and prints
the views the dashboard's Learned tab shows: the probe text shaded by surprise (by
change, with --since), the loss by position in the context and the context gain,
each head's roles, and the embedding map. On a terminal the shading is colour;
otherwise each line of text has a line of block marks under it, one per character,
as high as the token's surprise. Torch-free: it reads files only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from minigpt.display import number
from minigpt.errors import MiniGPTError
from minigpt.events import LearnedEvent
from minigpt.learned.reading import (
    Probe,
    block,
    change_share,
    changes,
    guesses,
    head_scores,
    most_moved,
    passage_lines,
    shown_text,
    sparkline,
    surprise,
)
from minigpt.rundir.learned import LearnedRecords

WIDTH = 78  # the text's width in cells
MAP_SIZE = (60, 16)  # the embedding map's width and height in cells
MAP_LABELS = 40  # the most frequent tokens the text map labels
MOVED = 8  # tokens listed as most changed


def add_learned_parser(commands: Any) -> None:
    """The `learned` subcommand's arguments."""
    learned = commands.add_parser("learned", help="what the model learned: probe text, heads, map")
    learned.add_argument("--run-dir", metavar="D", required=True, help="the run to read")
    learned.add_argument("--at", type=int, metavar="STEP", help="the eval at or before STEP")
    learned.add_argument("--since", type=int, metavar="STEP", help="compare with this eval")
    learned.add_argument("--json", action="store_true", help="one JSON object")
    learned.set_defaults(func=cmd_learned)


def cmd_learned(args: argparse.Namespace) -> int:
    """Print the learned views of one eval (and its changes since another)."""
    records = LearnedRecords(Path(args.run_dir))
    steps = records.steps()
    if not steps:
        raise MiniGPTError(
            f"{args.run_dir} has no learned records: it was trained before they existed, "
            "with train.learned_views = false, or has not been evaluated yet"
        )
    record = records.at_or_before(args.at)
    if record is None:
        raise MiniGPTError(f"no eval at or before step {args.at}; the first is {steps[0]}")
    since = None
    if args.since is not None:
        since = records.at_or_before(args.since)
        if since is None:
            raise MiniGPTError(f"no eval at or before step {args.since}; the first is {steps[0]}")
    probe = Probe.of(records.probe()) or Probe([], [])
    if args.json:
        print(json.dumps(as_json(record, since, probe, steps), ensure_ascii=False))
    else:
        colour = sys.stdout.isatty()
        print("\n".join(as_text(record, since, probe, steps, colour)))
    return 0


def as_json(
    record: LearnedEvent, since: LearnedEvent | None, probe: Probe, steps: list[int]
) -> dict[str, Any]:
    """The views as one JSON-ready object."""
    change = changes(record, since) if since else None
    points = record.embedding_map
    out: dict[str, Any] = {
        "step": record.step,
        "steps": steps,
        "probe": [
            {
                "text": text,
                "loss": record.probe_loss[i] if i < len(record.probe_loss) else None,
                "guesses": [
                    {"token": probe.token(t), "id": t, "prob": p} for t, p in guesses(record, i)
                ],
            }
            | ({"change": change[i] if i < len(change) else None} if change is not None else {})
            for i, text in enumerate(probe.text)
        ],
        "position_loss": record.position_loss,
        "context_gain": record.context_gain,
        "heads": _heads(record),
        "embedding_map": [
            {"id": i, "text": probe.token(i), "x": x, "y": y}
            for i, x, y in zip(points.ids, points.x, points.y, strict=False)
        ],
    }
    if since is not None:
        out["since"] = {
            "step": since.step,
            "position_loss": since.position_loss,
            "context_gain": since.context_gain,
            "heads": _heads(since),
        }
    return out


def _heads(record: LearnedEvent) -> list[list[dict[str, float | None]]]:
    """A record's head roles as JSON: [block][head] {previous_token, induction, entropy}."""
    return [[dataclasses.asdict(roles) for roles in row] for row in record.heads]


def _shade(fraction: float | None, colour: bool, signed: bool = False) -> tuple[str, str]:
    """ANSI colours around text for a surprise 0..1 (or a change -1..1 when signed)."""
    if not colour or fraction is None or not math.isfinite(fraction):
        return "", ""
    if signed:  # green got easier, red got harder
        level = min(5, int(abs(fraction) * 6))
        code = (
            (22, 28, 34, 40, 46, 82)[level] if fraction < 0 else (52, 88, 124, 160, 196, 203)[level]
        )
    else:  # from a cool grey-blue (known) to hot red (surprising)
        code = (17, 18, 54, 90, 126, 162, 197, 196)[min(7, int(fraction * 8))]
    return f"\x1b[48;5;{code}m", "\x1b[0m"


def probe_text(
    record: LearnedEvent, since: LearnedEvent | None, probe: Probe, colour: bool
) -> list[str]:
    """The probe passage, each token shaded by surprise (or by its change since)."""
    vocab = max(2, len(probe.vocab))
    change = changes(record, since) if since else None
    lines = []
    for line in passage_lines(probe.text, WIDTH):
        text, marks = [], []
        for i in line:
            shown = shown_text(probe.text[i])
            if change is not None:
                c = change[i] if i < len(change) else None
                value = change_share(c, vocab)
                mark = (
                    " "
                    if value is None
                    else ("-" if value < -0.02 else "+" if value > 0.02 else ".")
                )
                start, end = _shade(value, colour, signed=True)
            else:
                loss = record.probe_loss[i] if i < len(record.probe_loss) else None
                value = surprise(loss, vocab)
                mark = block(value)
                start, end = _shade(value, colour)
            text.append(f"{start}{shown}{end}")
            marks.append(mark * len(shown))
        lines.append("".join(text))
        if not colour:
            lines.append("".join(marks))
    return lines


def text_map(record: LearnedEvent, probe: Probe) -> list[str]:
    """The embedding map's most frequent tokens placed on a grid of cells."""
    width, height = MAP_SIZE
    kept = record.embedding_map
    points = [
        (probe.token(i), x, y)
        for i, x, y in zip(kept.ids, kept.x, kept.y, strict=False)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)
    ][:MAP_LABELS]
    if not points:
        return ["(no map)"]
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    grid = [[" "] * width for _ in range(height)]
    for label, x, y in points:
        col = round((x - min(xs)) / ((max(xs) - min(xs)) or 1) * (width - 1))
        row = round((max(ys) - y) / ((max(ys) - min(ys)) or 1) * (height - 1))
        for k, c in enumerate(shown_text(label).strip() or label[:1]):
            if col + k < width and grid[row][col + k] == " ":
                grid[row][col + k] = c
    return ["│" + "".join(row) + "│" for row in grid]


def as_text(
    record: LearnedEvent,
    since: LearnedEvent | None,
    probe: Probe,
    steps: list[int],
    colour: bool,
) -> list[str]:
    """The views as lines of text."""
    out = [
        f"step {number(record.step, ',')} (evals with records: {len(steps)}, "
        f"steps {number(steps[0], ',')} to {number(steps[-1], ',')})"
    ]
    if since is None:
        out += [
            "",
            "Probe text, shaded by surprise (its loss over a blind guess's: low ▁ … █ high):",
        ]
    else:
        out += [
            "",
            f"Probe text, by change since step {number(since.step, ',')} (- easier, + harder):",
        ]
    out += probe_text(record, since, probe, colour)
    if since is not None:
        moved = most_moved(probe.text, changes(record, since), MOVED)
        out += ["", "Moved most:"] + [
            f"  {m.text!r:>16} at {m.index:>5}: {'easier' if m.change < 0 else 'harder'} "
            f"by {abs(m.change):.2f}"
            for m in moved
        ]
    out += ["", "Loss by position in the context (first to last):"]
    out.append(
        f"  step {number(record.step, ','):>9}: {sparkline(record.position_loss)}  "
        f"context gain {number(record.context_gain, '.3f')}"
    )
    if since is not None:
        out.append(
            f"  step {number(since.step, ','):>9}: {sparkline(since.position_loss)}  "
            f"context gain {number(since.context_gain, '.3f')}"
        )
    out += ["", "Heads: previous-token, induction (chance ~ 1/position), entropy in bits"]
    before = {(b, h): roles for b, h, roles in head_scores(since)} if since else {}
    for b, h, roles in head_scores(record):
        line = (
            f"  block {b} head {h}: prev {number(roles.previous_token, '.2f'):>5}  "
            f"induction {number(roles.induction, '.2f'):>5}  "
            f"entropy {number(roles.entropy, '.2f'):>5}"
        )
        if (b, h) in before:
            then = before[(b, h)]
            was = [number(v, ".2f") for v in (then.previous_token, then.induction, then.entropy)]
            line += f"   (was {', '.join(was)})"
        out.append(line)
    out += ["", f"Embedding map ({MAP_LABELS} most frequent tokens, principal components):"]
    out += text_map(record, probe)
    return out

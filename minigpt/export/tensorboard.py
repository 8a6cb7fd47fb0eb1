"""A run's history as TensorBoard event files, for TensorBoard or anything that reads them.

Contract:
- `export_tensorboard(run_dir, out)` writes the folder out, whole or not at all, holding
  one event file: every step's loss, learning rate and gradient norm; every eval's train
  and val loss, bits per byte, and each block's update ratio and weight norm; every alert
  and config change as text; from samples.jsonl every completion as text; and from
  learned/ each eval's record of the learned views: its context gain and each head's
  previous-token, induction and entropy scores. Each point is at its step and with the
  wall time it happened at.
- Each usable line of metrics.jsonl and samples.jsonl (journal.usable: an event of a kind
  the file holds, with a step) gives its points, in file order (a resumed run's file holds
  each step once); a value the event lacks (not recorded, or NaN, which the file keeps as
  null) gives no point. Each record LearnedRecords reads gives its points likewise, in
  step order; a run without learned/ gives no learned tags.
- The learning rate is AdamW's, the one a step records; Muon's follows the same schedule
  scaled by muon_learning_rate / learning_rate.
- torch.utils.tensorboard, and so the tensorboard package, is imported only when called.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

from minigpt.errors import ExportError
from minigpt.events import (
    AlertEvent,
    ConfigAppliedEvent,
    EvalEvent,
    LearnedEvent,
    SampleDoneEvent,
    StepEvent,
)
from minigpt.export.folder import check_destination, needs_extra, write_export
from minigpt.rundir.journal import MetricsEvent
from minigpt.rundir.layout import RunDir
from minigpt.rundir.learned import LearnedRecords

# tag -> the field of the event that gives its points
STEP_SCALARS = {"train/loss": "loss", "train/lr": "lr", "train/grad_norm": "grad_norm"}
EVAL_SCALARS = {
    "eval/train_loss": "train_loss",
    "eval/val_loss": "val_loss",
    "eval/train_bpb": "train_bpb",
    "eval/val_bpb": "val_bpb",
}
BLOCK_SCALARS = {"health/update_ratio": "update_ratio", "health/weight_norm": "weight_norm"}
CONTEXT_GAIN = "learned/context_gain"
# tag -> the field of a head's roles (HeadRoles) that gives its points, one tag per head
HEAD_SCALARS = {
    "learned/previous_token": "previous_token",
    "learned/induction": "induction",
    "learned/entropy": "entropy",
}


def export_tensorboard(run_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the history of the run in run_dir as TensorBoard event files in the folder out."""
    folder = check_destination(out)
    _, board = needs_extra("tensorboard", "torch.utils.tensorboard")
    run = RunDir(run_dir)
    if not run.metrics.is_file():
        raise ExportError(f"{run.metrics} not found: {run.path} has no history to export")
    learned = LearnedRecords(run.path)

    def write(temp: Path) -> None:
        """Write the event file into the temporary folder."""
        writer = board.SummaryWriter(log_dir=str(temp))
        try:
            for reading in (run.read_metrics(), run.read_samples()):
                for event in reading:
                    _write_event(writer, event)
            for step in learned.steps():
                if (record := learned.record(step)) is not None:
                    _write_learned(writer, record)
        finally:
            writer.close()

    return write_export(folder, write)


def _write_event(writer: Any, event: MetricsEvent | SampleDoneEvent) -> None:
    """The points one usable event of the history gives."""
    step = event.step
    scalars: dict[str, float | None] = {}
    if isinstance(event, StepEvent):
        scalars = {tag: getattr(event, name) for tag, name in STEP_SCALARS.items()}
    elif isinstance(event, EvalEvent):
        scalars = {tag: getattr(event, name) for tag, name in EVAL_SCALARS.items()}
        for tag, name in BLOCK_SCALARS.items():
            for block, value in enumerate(getattr(event, name) or []):
                scalars[f"{tag}/block_{block}"] = value
    elif isinstance(event, AlertEvent):
        writer.add_text("alerts", f"**{event.kind}**: {event.message}", step, event.time)
    elif isinstance(event, ConfigAppliedEvent):
        changes = [f"`{key}`: {old!r} → {new!r}" for key, (old, new) in _pairs(event.changes)]
        writer.add_text("config_changes", "  \n".join(changes), step, event.time)
    elif isinstance(event, SampleDoneEvent):
        writer.add_text("samples", sample_text(event), step, event.time)
    _add_scalars(writer, scalars, step, event.time)


def _write_learned(writer: Any, record: LearnedEvent) -> None:
    """The points one eval's record of the learned views gives."""
    scalars = {CONTEXT_GAIN: record.context_gain}
    for block, heads in enumerate(record.heads):
        for head, roles in enumerate(heads):
            for tag, name in HEAD_SCALARS.items():
                scalars[head_tag(tag, block, head)] = getattr(roles, name)
    _add_scalars(writer, scalars, record.step, record.time)


def head_tag(tag: str, block: int, head: int) -> str:
    """The tag of one head's score: learned/induction/block_1_head_0."""
    return f"{tag}/block_{block}_head_{head}"


def _add_scalars(
    writer: Any, scalars: dict[str, float | None], step: int | None, time: float
) -> None:
    """One point per tag at step, where the value was recorded."""
    for tag, value in scalars.items():
        if value is not None:
            writer.add_scalar(tag, value, step, time)


def sample_text(event: SampleDoneEvent) -> str:
    """A completion as TensorBoard shows it: a line on how it was drawn, then prompt and
    completion as a Markdown code block (indented), so no character of it is markup."""
    settings = event.settings
    how = ", ".join(
        f"{key} {settings[key]}" for key in ("temperature", "top_k", "top_p", "seed")
        if settings.get(key) is not None
    )  # fmt: skip
    who = "at an eval" if event.at_eval else "asked for"
    cancelled = ", cancelled" if event.cancelled else ""
    body = textwrap.indent(event.prompt + event.text, "    ", lambda _: True)
    return f"{who}{cancelled}: {how}\n\n{body}"


def _pairs(changes: dict[str, list[Any]]) -> list[tuple[str, tuple[Any, Any]]]:
    """A config change's keys with their (old, new) values; a malformed entry shows as ?."""
    return [
        (key, (value[0], value[1]) if len(value) == 2 else ("?", "?"))
        for key, value in changes.items()
    ]

"""Exporting the open run's model from the dashboard: `minigpt export --hf` in a subprocess.

The dashboard never imports torch, so the export runs as the command a user would
type, into the run directory (export/hf-step-N, N the checkpoint's step); its one line
of error, or where it wrote, is what the dashboard says.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXPORT_SECONDS = 600  # a large model's weights take a while to write; a hang does not


def export_folder(run_dir: Path, step: int) -> Path:
    """Where the dashboard exports the checkpoint of this step."""
    return run_dir / "export" / f"hf-step-{step}"


def export_model(run_dir: Path, step: int | None) -> tuple[bool, str]:
    """Export the run's model.ckpt (saved at step) for transformers: (done, what to say)."""
    if step is None:
        return False, "No checkpoint to export yet: press s to save one, then x."
    out = export_folder(run_dir, step)
    if out.is_dir() and any(out.iterdir()):
        return True, f"Step {step:,} is already exported to {out}."
    command = [sys.executable, "-m", "minigpt", "export", "--run-dir", str(run_dir)]
    try:
        done = subprocess.run(
            [*command, "--hf", str(out)], capture_output=True, text=True, timeout=EXPORT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"Export failed: {error}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        why = lines[-1].removeprefix("minigpt: error: ") if lines else f"exit {done.returncode}"
        return False, f"Export failed: {why}"
    return True, (
        f"Exported step {step:,} to {out}: AutoModelForCausalLM.from_pretrained('{out}') "
        "loads it (minigpt export --help for TensorBoard)."
    )

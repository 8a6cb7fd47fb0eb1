"""The `minigpt-tui` command: the dashboard for a run, starting its engine if needed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from minigpt.cli.options import add_config_args
from minigpt.errors import CheckpointError, MiniGPTError
from minigpt.rundir.layout import RunDir, default_run_dir
from tui.app import make_app
from tui.link import EngineLink


def build_parser() -> argparse.ArgumentParser:
    """minigpt-tui's options."""
    parser = argparse.ArgumentParser(
        prog="minigpt-tui",
        description="Train a small GPT in your terminal and talk to it while it learns.",
    )
    add_config_args(parser)
    parser.add_argument("--run-dir", metavar="D", help="run directory (default: runs/run-TIME)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue D/model.ckpt; refuse if it has none (D resumes anyway when it has one)",
    )
    parser.add_argument("--attach", metavar="D", help="attach to the engine serving D")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Check the options, then run the dashboard; user errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    run_dir = Path(args.attach or args.run_dir or default_run_dir())
    try:
        checkpoint = RunDir(run_dir).model_ckpt
        if args.resume and not checkpoint.exists():
            # Why: a mistyped --run-dir would otherwise start a fresh run without a word.
            raise CheckpointError(
                f"--resume: no checkpoint at {checkpoint}; leave out --resume to start a new run"
            )
        link = EngineLink.from_options(
            run_dir, args.config, args.data, args.overrides, attach_only=bool(args.attach)
        )
    except MiniGPTError as error:
        print(f"minigpt-tui: error: {error}", file=sys.stderr)
        return 2
    app = make_app(link)
    app.run()
    return app.return_code or 0  # non-zero when the app had to stop on an error

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

# --serve's defaults: this machine only (reach it with ssh -L); each tab is a dashboard
# process of its own.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_TABS = 4


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
    web = parser.add_argument_group("the dashboard in a browser (README: Watch it from anywhere)")
    web.add_argument(
        "--serve",
        action="store_true",
        help="serve the dashboard to browser tabs instead; prints the link to open",
    )
    web.add_argument(
        "--host", metavar="H", help=f"address to listen on (default {DEFAULT_HOST}: this machine)"
    )
    web.add_argument("--port", metavar="P", type=int, help=f"port (default {DEFAULT_PORT})")
    web.add_argument(
        "--max-tabs", metavar="N", type=int, help=f"tabs open at once (default {DEFAULT_MAX_TABS})"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Check the options, then run the dashboard; user errors print one line and return 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.serve and (args.host, args.port, args.max_tabs) != (None, None, None):
        parser.error("--host, --port and --max-tabs go with --serve")
    if args.max_tabs is not None and args.max_tabs < 1:
        parser.error("--max-tabs: at least 1")
    if args.port is not None and not 0 <= args.port <= 65535:
        parser.error("--port: 0 to 65535 (0: any free port)")
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
    if args.serve:
        from tui.web.serve import serve  # aiohttp: 0.3 s of imports a terminal dashboard skips

        return serve(
            link,
            args.host or DEFAULT_HOST,
            DEFAULT_PORT if args.port is None else args.port,
            args.max_tabs or DEFAULT_MAX_TABS,
        )
    app = make_app(link)
    app.run()
    return app.return_code or 0  # non-zero when the app had to stop on an error

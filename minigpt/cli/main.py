"""The `minigpt` command: train, sample, inspect and benchmark without a UI.

Every subcommand takes `--config F` and `--set section.key=value`. A problem
the user can fix is printed as one line on stderr with exit code 2, never as
a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from minigpt.cli.compare import add_compare_parser
from minigpt.cli.learned import add_learned_parser
from minigpt.cli.options import add_config_args
from minigpt.cli.status import run_status
from minigpt.errors import MiniGPTError


def cmd_status(args: argparse.Namespace) -> int:
    """One line per run: alive or not, state, step, last and best val loss."""
    if args.run_dir:
        folders = [Path(args.run_dir)]
    else:
        root = Path("runs")
        folders = (
            sorted(p for p in root.iterdir() if (p / "config.toml").exists())
            if root.is_dir()
            else []
        )
        if not folders:
            print("no runs under runs/")
    for folder in folders:
        print(run_status(folder))
    return 0


def _needs_torch(name: str) -> Callable[[argparse.Namespace], int]:
    """The command `name` of commands.py, imported (with torch) only when it runs."""

    def run(args: argparse.Namespace) -> int:
        command: Callable[[argparse.Namespace], int]
        command = getattr(importlib.import_module("minigpt.cli.commands"), name)
        return command(args)

    return run


def _add_source_args(parser: argparse.ArgumentParser) -> None:
    """Which checkpoint: a run's model.ckpt or a file."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-dir", metavar="D", help="use D/model.ckpt")
    source.add_argument("--ckpt", metavar="F", help="use this checkpoint file")


def _add_checkpoint_args(parser: argparse.ArgumentParser) -> None:
    """--config, --set, which checkpoint, and the [sample] flags that apply to one prompt."""
    add_config_args(parser, data=False)
    _add_source_args(parser)
    parser.add_argument("--prompt", metavar="T")
    parser.add_argument("--temperature", type=float, metavar="T", help="0 = greedy")
    parser.add_argument("--top-k", type=int, metavar="K", help="0 = off")
    parser.add_argument("--top-p", type=float, metavar="P", help="1 = off")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="minigpt", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model, printing progress")
    add_config_args(train)
    train.add_argument("--run-dir", metavar="D", help="run directory (default: runs/run-TIME)")
    train.add_argument("--resume", action="store_true", help="continue from D/model.ckpt")
    train.add_argument(
        "--log-interval", type=int, default=10, metavar="N", help="print every N steps"
    )
    train.set_defaults(func=_needs_torch("cmd_train"))

    engine = commands.add_parser("engine", help="serve a run on its control socket")
    add_config_args(engine)
    engine.add_argument("--run-dir", metavar="D", required=True, help="run directory")
    engine.add_argument("--resume", action="store_true", help="continue from D/model.ckpt")
    engine.add_argument("--start", action="store_true", help="start training at once")
    engine.add_argument(
        "--idle-timeout",
        type=float,
        default=900.0,
        metavar="S",
        help="save and exit after S seconds neither training nor watched (0 = never)",
    )
    engine.add_argument("--detached", action="store_true", help="ignore SIGHUP")
    engine.add_argument(
        "--log-interval", type=int, default=100, metavar="N", help=argparse.SUPPRESS
    )
    engine.set_defaults(func=_needs_torch("cmd_engine"))

    status = commands.add_parser("status", help="list runs: alive, state, step, val loss")
    status.add_argument("--run-dir", metavar="D", help="only this run (default: all under runs/)")
    status.set_defaults(func=cmd_status)

    add_learned_parser(commands)
    add_compare_parser(commands)

    sample = commands.add_parser("sample", help="stream text from a checkpoint")
    _add_checkpoint_args(sample)
    sample.add_argument("--max-new-tokens", type=int, metavar="N")
    sample.add_argument("--seed", type=int, metavar="S", help="fixed seed for repeatable text")
    sample.add_argument("--no-kv-cache", action="store_true", help="recompute every step")
    sample.set_defaults(func=_needs_torch("cmd_sample"))

    inspect = commands.add_parser("inspect", help="show the odds of the next token, step by step")
    _add_checkpoint_args(inspect)
    inspect.add_argument(
        "--position", type=int, metavar="N", help="odds after prompt token N (default: the last)"
    )
    inspect.add_argument("--top", type=int, default=15, metavar="N", help="candidates to show")
    inspect.add_argument(
        "--attention", metavar="BLOCK:HEAD", help="also show one head's weights, or BLOCK:mean"
    )
    inspect.add_argument("--json", action="store_true", help="print one JSON object, for scripts")
    inspect.set_defaults(func=_needs_torch("cmd_inspect"))

    export = commands.add_parser(
        "export", help="a checkpoint as a transformers model, a run's history for TensorBoard"
    )
    _add_source_args(export)
    export.add_argument(
        "--hf", metavar="OUT", help="write a folder that transformers' from_pretrained loads"
    )
    export.add_argument(
        "--tensorboard", metavar="OUT", help="write the run's history as TensorBoard event files"
    )
    export.set_defaults(func=_needs_torch("cmd_export"))

    bench = commands.add_parser("bench", help="measure training speed")
    add_config_args(bench)
    bench.add_argument("--steps", type=int, default=20, metavar="N", help="timed steps")
    bench.add_argument("--warmup", type=int, default=5, metavar="N", help="untimed steps first")
    bench.add_argument("--json", action="store_true", help="print one JSON object, for scripts")
    bench.set_defaults(func=_needs_torch("cmd_bench"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except MiniGPTError as error:
        print(f"minigpt: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the machine's, not ours: a full disk, a read-only folder
        where = f"{error.filename}: " if error.filename else ""
        print(f"minigpt: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before training began: nothing to save
        return 130

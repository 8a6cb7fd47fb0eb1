"""The `minigpt` command: train, sample and benchmark without a UI.

Every subcommand takes `--config F` and `--set section.key=value`. A problem
the user can fix is printed as one line on stderr with exit code 2, never as
a traceback.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from minigpt.checkpoint import load_checkpoint
from minigpt.config import (
    Config,
    apply_values,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_overrides,
)
from minigpt.errors import CheckpointError, MiniGPTError
from minigpt.events import CheckpointEvent, EvalEvent, Event, LogEvent, StepEvent
from minigpt.model import Model
from minigpt.run import Run, load_corpus
from minigpt.rundir import RunDir, default_run_dir
from minigpt.sampling import sample_text
from minigpt.tokenizer import tokenizer_from_state
from minigpt.train import Trainer, pick_device


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    """--config and --set, shared by every subcommand."""
    parser.add_argument("--config", metavar="F", help="TOML config (default: ./config.toml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one key, e.g. --set train.max_iters=300 (repeatable)",
    )


def _load(args: argparse.Namespace) -> Config:
    """The config file (or defaults) with --data and --set applied."""
    return load_config(args.config, _with_data(args))


def _duration(seconds: float) -> str:
    """Seconds as 1h02m, 3m05s or 42s."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class ProgressPrinter:
    """nanoGPT-style progress lines for `minigpt train`."""

    def __init__(self, max_iters: int, log_interval: int) -> None:
        """Print a step line every log_interval steps; eval and checkpoint lines always."""
        self.max_iters = max_iters
        self.log_interval = log_interval
        self.ms_per_step: float | None = None

    def __call__(self, event: Event) -> None:
        """Print one event if it is due."""
        if isinstance(event, StepEvent):
            ms = event.ms_per_step
            # An exponential average keeps the ETA steady through noisy steps.
            self.ms_per_step = ms if self.ms_per_step is None else 0.9 * self.ms_per_step + 0.1 * ms
            if event.step % self.log_interval == 0 or event.step == self.max_iters:
                eta = (self.max_iters - event.step) * self.ms_per_step / 1000
                print(
                    f"step {event.step}/{self.max_iters} | loss {event.loss:.4f} | "
                    f"lr {event.lr:.2e} | {event.tokens_per_sec:,.0f} tok/s | "
                    f"{ms:.1f} ms/step | ETA {_duration(eta)}",
                    flush=True,
                )
        elif isinstance(event, EvalEvent):
            best = " (best)" if event.val_loss <= event.best_val_loss else ""
            print(
                f"step {event.step}: train loss {event.train_loss:.4f}, "
                f"val loss {event.val_loss:.4f}{best}",
                flush=True,
            )
        elif isinstance(event, CheckpointEvent) and not event.path.endswith("best.ckpt"):
            print(f"saved {event.path} (step {event.step})", flush=True)
        elif isinstance(event, LogEvent):
            _print_log(event)


def _print_log(event: LogEvent) -> None:
    """An engine message, on stderr."""
    print(f"{event.level}: {event.message}", file=sys.stderr, flush=True)


def _dtype_name(dtype: torch.dtype) -> str:
    """torch.float32 -> float32."""
    return str(dtype).removeprefix("torch.")


def _print_progress(stage: str, fraction: float) -> None:
    """Progress of slow data preparation, on one rewritten stderr line."""
    end = "\n" if fraction >= 1 else ""
    print(f"\r{stage}: {fraction:6.1%}", end=end, file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume) a run in the foreground, printing progress."""
    path = Path(args.run_dir) if args.run_dir else default_run_dir()
    if args.resume:
        # Without --config or --set the checkpoint's own config continues.
        config = None
        if args.config or args.overrides or args.data:
            config = load_config(args.config or RunDir(path).config, _with_data(args))
        run = Run.resume(config, path, _print_progress, _print_log)
    else:
        run = Run.start(_load(args), path, _print_progress, _print_log)
    printer = ProgressPrinter(run.config.train.max_iters, args.log_interval)
    t = run.trainer
    corpus = t.corpus
    print(
        f"run {run.run_dir.path} | {corpus.name}: {corpus.num_tokens:,} tokens, "
        f"{corpus.tokenizer.kind} vocab {corpus.tokenizer.vocab_size:,} | "
        f"{t.model.num_params() / 1e6:.2f}M params | {t.device} {_dtype_name(t.dtype)}, "
        f"{torch.get_num_threads()} threads | step {t.step}",
        flush=True,
    )
    if run.done:
        print(
            f"already at step {t.step} of max_iters {run.config.train.max_iters}; "
            "raise it to train further, e.g. --set train.max_iters=N"
        )
    try:
        while not run.done:
            for event in run.advance():
                printer(event)
    except KeyboardInterrupt:
        printer(run.save())
        print(f"interrupted; resume with: minigpt train --run-dir {run.run_dir.path} --resume")
        return 130
    finally:
        run.close()
    return 0


def _with_data(args: argparse.Namespace) -> list[str]:
    """--data as an override, ahead of the --set ones."""
    data = [f"data.path={json.dumps(args.data)}"] if args.data else []
    return data + list(args.overrides)


def cmd_sample(args: argparse.Namespace) -> int:
    """Stream a completion from a checkpoint to stdout."""
    ckpt = Path(args.ckpt) if args.ckpt else RunDir(args.run_dir).model_ckpt
    state = load_checkpoint(ckpt)
    config = config_from_dict(state["config"], source=str(ckpt))
    values: dict[str, object] = {}
    if args.config:  # only its [sample] settings matter: the model is the checkpoint's
        values |= {
            f"sample.{k}": v for k, v in config_to_dict(load_config(args.config))["sample"].items()
        }
    values |= parse_overrides(args.overrides)
    values |= {f"sample.{k}": v for k, v in _sample_flags(args).items() if v is not None}
    config = apply_values(config, values)
    tokenizer = tokenizer_from_state(state["tokenizer"])
    model = Model(config.model, tokenizer.vocab_size)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        reason = str(error).splitlines()[0]
        raise CheckpointError(f"{ckpt} does not fit its own config: {reason}") from None
    model.to(pick_device(config.train.device))
    s = config.sample
    pieces = sample_text(model, tokenizer, s, seed=args.seed, use_cache=not args.no_kv_cache)
    first = next(pieces, "")  # encodes the prompt: a bad one fails before anything prints
    print(s.prompt + first, end="", flush=True)
    for piece in pieces:
        print(piece, end="", flush=True)
    print()
    return 0


def _sample_flags(args: argparse.Namespace) -> dict[str, object]:
    """The [sample] keys given as flags."""
    return {
        "prompt": args.prompt,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
    }


def cmd_bench(args: argparse.Namespace) -> int:
    """Time training steps on the configured model and corpus; print one JSON line."""
    config = _load(args)
    trainer = Trainer(config, load_corpus(config))
    for _ in range(args.warmup):
        trainer.train_step()
    started = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    seconds = time.perf_counter() - started
    result = {
        "tokens_per_sec": trainer.tokens_per_step * args.steps / seconds,
        "ms_per_step": seconds * 1000 / args.steps,
        "params": trainer.model.num_params(),
        "vocab_size": trainer.corpus.tokenizer.vocab_size,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "steps": args.steps,
        "warmup": args.warmup,
        "device": str(trainer.device),
        "dtype": _dtype_name(trainer.dtype),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "config": config_to_dict(config),
    }
    print(json.dumps(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="minigpt", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model, printing progress")
    _add_config_args(train)
    train.add_argument("--data", metavar="P", help="corpus file or folder (sets data.path)")
    train.add_argument("--run-dir", metavar="D", help="run directory (default: runs/run-TIME)")
    train.add_argument("--resume", action="store_true", help="continue from D/model.ckpt")
    train.add_argument(
        "--log-interval", type=int, default=10, metavar="N", help="print every N steps"
    )
    train.set_defaults(func=cmd_train)

    sample = commands.add_parser("sample", help="stream text from a checkpoint")
    _add_config_args(sample)
    source = sample.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-dir", metavar="D", help="use D/model.ckpt")
    source.add_argument("--ckpt", metavar="F", help="use this checkpoint file")
    sample.add_argument("--prompt", metavar="T")
    sample.add_argument("--max-new-tokens", type=int, metavar="N")
    sample.add_argument("--temperature", type=float, metavar="T", help="0 = greedy")
    sample.add_argument("--top-k", type=int, metavar="K", help="0 = off")
    sample.add_argument("--top-p", type=float, metavar="P", help="1 = off")
    sample.add_argument("--seed", type=int, metavar="S", help="fixed seed for repeatable text")
    sample.add_argument("--no-kv-cache", action="store_true", help="recompute every step")
    sample.set_defaults(func=cmd_sample)

    bench = commands.add_parser("bench", help="measure training speed, print JSON")
    _add_config_args(bench)
    bench.add_argument("--data", metavar="P", help="corpus file or folder (sets data.path)")
    bench.add_argument("--steps", type=int, default=20, metavar="N", help="timed steps")
    bench.add_argument("--warmup", type=int, default=5, metavar="N", help="untimed steps first")
    bench.add_argument("--json", action="store_true", help="print JSON (the only format)")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MiniGPTError as error:
        print(f"minigpt: error: {error}", file=sys.stderr)
        return 2

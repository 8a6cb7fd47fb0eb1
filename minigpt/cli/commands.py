"""What the `minigpt` subcommands do, apart from `status`: everything here needs torch, which
cli.py loads only when one of them runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from minigpt import distributed
from minigpt.alerts import rates_to_lower
from minigpt.checkpoint import evaluated_model, load_checkpoint, saved_config
from minigpt.cli.inspection_text import inspection_json, inspection_text, parse_head
from minigpt.cli.options import overrides_with_data
from minigpt.config import (
    Config,
    apply_values,
    config_to_dict,
    load_config,
    parse_overrides,
)
from minigpt.display import duration, number
from minigpt.distributed import Cluster
from minigpt.errors import ExportError
from minigpt.events import (
    AlertEvent,
    CheckpointEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    LogEvent,
    StepEvent,
)
from minigpt.export.folder import check_destination
from minigpt.export.hf import export_hf
from minigpt.export.tensorboard import export_tensorboard
from minigpt.inspection import inspect_next
from minigpt.model import Model
from minigpt.rundir.layout import RunDir, RunLock, default_run_dir
from minigpt.sampling import Completion
from minigpt.service.engine import Engine
from minigpt.service.follower import follow
from minigpt.service.run import Run, load_corpus
from minigpt.tokenizer import Tokenizer
from minigpt.train import Trainer, pick_device


def _load(args: argparse.Namespace) -> Config:
    """The config file (or defaults) with --data and --set applied."""
    return load_config(args.config, overrides_with_data(args.data, args.overrides))


class ProgressPrinter:
    """nanoGPT-style progress lines for `minigpt train`."""

    def __init__(self, max_iters: int, log_interval: int) -> None:
        """Print a step line every log_interval steps; eval and checkpoint lines always."""
        self.max_iters = max_iters
        self.log_interval = log_interval
        self.ms_per_step: float | None = None

    def __call__(self, event: Event) -> None:
        """Print one event if it is due."""
        if isinstance(event, StepEvent) and event.step is not None:
            ms = event.ms_per_step
            # An exponential average keeps the ETA steady through noisy steps.
            if ms is not None:
                average = self.ms_per_step
                self.ms_per_step = ms if average is None else 0.9 * average + 0.1 * ms
            if event.step % self.log_interval == 0 or event.step == self.max_iters:
                left = self.max_iters - event.step
                eta = None if self.ms_per_step is None else left * self.ms_per_step / 1000
                print(
                    f"step {event.step}/{self.max_iters} | loss {number(event.loss, '.4f')} | "
                    f"lr {number(event.lr, '.2e')} | {number(event.tokens_per_sec, ',.0f')} "
                    f"tok/s | {number(ms, '.1f')} ms/step | ETA {duration(eta)}",
                    flush=True,
                )
        elif isinstance(event, EvalEvent):
            val, best_val = event.val_loss, event.best_val_loss
            best = " (best)" if val is not None and best_val is not None and val <= best_val else ""
            bpb = "" if event.val_bpb is None else f" ({event.val_bpb:.3f} bits/byte)"
            print(
                f"step {event.step}: train loss {number(event.train_loss, '.4f')}, "
                f"val loss {number(val, '.4f')}{bpb}{best}",
                flush=True,
            )
        elif isinstance(event, CheckpointEvent) and not event.path.endswith("best.ckpt"):
            print(f"saved {event.path} (step {event.step})", flush=True)
        elif isinstance(event, AlertEvent):
            print(f"alert ({event.kind}) at step {event.step}: {event.message}", flush=True)
        elif isinstance(event, LogEvent):
            _print_log(event)
        elif isinstance(event, ErrorEvent):
            print(f"error: {event.message}", file=sys.stderr, flush=True)


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


def _open_run(
    args: argparse.Namespace, path: Path, config: Config | None, cluster: Cluster | None = None
) -> Run:
    """Start a fresh run in path, or resume it with --resume."""
    if args.resume:
        return Run.resume(config, path, _print_progress, cluster)
    assert config is not None
    return Run.start(config, path, _print_progress, cluster=cluster)


def _config_for(args: argparse.Namespace, path: Path) -> Config | None:
    """The config a command asks for; None resumes with the checkpoint's own."""
    if not args.resume:
        return _load(args)
    if args.config or args.overrides or args.data:
        return load_config(
            args.config or RunDir(path).config, overrides_with_data(args.data, args.overrides)
        )
    return None


def _print_banner(run: Run) -> None:
    """One line on what is about to train."""
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
            "raise it to train further, e.g. --set train.max_iters=N",
            flush=True,
        )


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume) a run in the foreground, printing progress; clients may attach.

    Under torchrun, rank 0 does all of that and the other ranks follow it.
    """
    path = Path(args.run_dir) if args.run_dir else default_run_dir()
    config = _config_for(args, path)
    cluster = distributed.join()
    if cluster is not None and not cluster.leader:
        code = follow(config, path, args.resume, cluster)
        cluster.close()
        # Skip the interpreter's teardown: in about one exit in eight under load, gloo's
        # threads outlived it and C++ aborted the process after its work was done.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    with RunLock(RunDir(path)):
        run = _open_run(args, path, config, cluster)
        _print_banner(run)
        printer = ProgressPrinter(run.config.train.max_iters, args.log_interval)
        engine = Engine(run, start=True, exit_when_finished=True, on_event=printer, cluster=cluster)
        code = engine.serve()
    if cluster is not None:
        cluster.close()
    resume = f"minigpt train --run-dir {path} --resume"
    if code > 128:
        print(f"interrupted; resume with: {resume}", flush=True)
    elif code == 1:  # a step failed (out of memory...); the error said why
        print(f"after fixing that, resume with: {resume}", file=sys.stderr)
    elif code == 2:  # the loss diverged; the error said what to change
        lower = " ".join(f"--set {key}=LOWER" for key in rates_to_lower(engine.run.config.train))
        print(f"resume with: {resume} {lower}", file=sys.stderr)
    return code


def cmd_engine(args: argparse.Namespace) -> int:
    """Serve a run on its control socket until shut down (the dashboard starts this)."""
    if args.detached:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # belt and braces beside setsid
    path = Path(args.run_dir)
    config = _config_for(args, path)
    with RunLock(RunDir(path)):
        run = _open_run(args, path, config)
        _print_banner(run)
        printer = ProgressPrinter(run.config.train.max_iters, args.log_interval)
        engine = Engine(run, start=args.start, idle_timeout=args.idle_timeout, on_event=printer)
        return engine.serve()


def _load_model(args: argparse.Namespace) -> tuple[Config, Tokenizer, Model, int]:
    """A checkpoint's config (with --config's [sample], --set and the sample flags applied),
    tokenizer, model on its device, and step; the config as the engine reads it back, so an
    old checkpoint's model is the one it trained, whatever today's defaults."""
    ckpt = Path(args.ckpt) if args.ckpt else RunDir(args.run_dir).model_ckpt
    state = load_checkpoint(ckpt)
    config = saved_config(state, ckpt)
    values: dict[str, object] = {}
    if args.config:  # only its [sample] settings matter: the model is the checkpoint's
        values |= {
            f"sample.{k}": v for k, v in config_to_dict(load_config(args.config))["sample"].items()
        }
    values |= parse_overrides(args.overrides)
    values |= {f"sample.{k}": v for k, v in _sample_flags(args).items() if v is not None}
    config = apply_values(config, values)
    tokenizer, model = evaluated_model(state, config.model, ckpt)
    model.to(pick_device(config.train.device))
    return config, tokenizer, model, int(state["step"])


def cmd_sample(args: argparse.Namespace) -> int:
    """Stream a completion from a checkpoint to stdout."""
    config, tokenizer, model, _ = _load_model(args)
    s = config.sample
    completion = Completion(model, tokenizer, s, seed=args.seed, use_cache=not args.no_kv_cache)
    if completion.prompt_cropped:
        print(
            f"note: the prompt's first {completion.prompt_cropped} tokens are cropped "
            f"to fit context_length {config.model.context_length}",
            file=sys.stderr,
        )
    print(s.prompt, end="", flush=True)
    for piece in completion:
        print(piece, end="", flush=True)
    print()
    return 0


def _sample_flags(args: argparse.Namespace) -> dict[str, object]:
    """The [sample] keys given as flags (a command may lack some of them)."""
    keys = ("prompt", "max_new_tokens", "temperature", "top_k", "top_p")
    return {key: getattr(args, key, None) for key in keys}


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the odds of the next token at each step of generate, and optionally attention."""
    config, tokenizer, model, step = _load_model(args)
    c, s = config.model, config.sample
    head = None if args.attention is None else parse_head(args.attention, c.num_blocks, c.num_heads)
    result = inspect_next(
        model,
        tokenizer,
        s.prompt,
        step=step,
        temperature=s.temperature,
        top_k=s.top_k,
        top_p=s.top_p,
        position=args.position,
        top=args.top,
        attention=head is not None,
    )
    if args.json:
        print(json.dumps(inspection_json(result, head), ensure_ascii=False))
    else:
        print(inspection_text(result, head))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the checkpoint as a transformers model (--hf) and the run's history as
    TensorBoard event files (--tensorboard): both, or neither when one fails."""
    if not (args.hf or args.tensorboard):
        raise ExportError("say what to export: --hf OUT, --tensorboard OUT, or both")
    ckpt = RunDir(args.run_dir).model_ckpt if args.run_dir else Path(args.ckpt)
    for out in (args.hf, args.tensorboard):  # both refused before either is written
        if out:
            check_destination(out)
    made: list[Path] = []
    try:
        if args.hf:
            made.append(export_hf(ckpt, args.hf))
        if args.tensorboard:
            made.append(export_tensorboard(ckpt.parent, args.tensorboard))  # its run's history
    except BaseException:
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    if args.hf:
        print(f"wrote {args.hf}: AutoModelForCausalLM.from_pretrained({args.hf!r}) loads it")
    if args.tensorboard:
        print(f"wrote {args.tensorboard}: tensorboard --logdir {args.tensorboard} shows it")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Time training steps on the configured model and corpus; print the figures."""
    config = _load(args)
    trainer = Trainer(config, load_corpus(config))
    for _ in range(args.warmup):
        trainer.train_step()
    durations = []
    for _ in range(args.steps):
        started = time.perf_counter()
        trainer.train_step()
        durations.append(time.perf_counter() - started)
    seconds = sum(durations)
    result = {
        "tokens_per_sec": trainer.tokens_per_step * args.steps / seconds,
        "ms_per_step": seconds * 1000 / args.steps,
        # The median shrugs off the odd step another process interrupted.
        "ms_per_step_median": statistics.median(durations) * 1000,
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
    print(json.dumps(result) if args.json else _bench_text(result))
    return 0


def _bench_text(result: dict[str, Any]) -> str:
    """bench's figures as lines for people (--json prints them for scripts)."""
    return "\n".join(
        [
            f"tokens/s   {result['tokens_per_sec']:,.0f}",
            f"ms/step    {result['ms_per_step']:.2f} (median {result['ms_per_step_median']:.2f})"
            f" over {result['steps']} steps after {result['warmup']} warmup",
            f"model      {result['params']:,} params, vocab {result['vocab_size']:,}",
            f"peak RSS   {result['peak_rss_mb']:,.0f} MB",
            f"on         {result['device']} {result['dtype']}, {result['threads']} threads,"
            f" torch {result['torch']}",
        ]
    )

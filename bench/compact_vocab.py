"""Which compact vocabulary the default run should keep: val bits per byte and time per step.

Trains the default config (config.toml) for --steps steps once per variant and seed, all in
this process, and reports for each variant: the rows of its vocabulary, the corpus's tokens,
the median training ms per step (evals left out), and the val loss in bits per byte over the
whole val split (every context_length window, the weight average the evals use) at the step
--steps - 400 and at the end, and at the end on today's val text, which every variant holds
out (python-stdlib ends with python-docs); with the alerts the run's evals raise
(minigpt.alerts, fed the same evals a run makes). Variants:

- today:     the default run before the change: builtin:python-docs, dropout 0.1, every id the
             full BPE uses, the spelled rule;
- spelled:   builtin:python-stdlib, the same rule;
- closure:   builtin:python-stdlib, the restricted rule over those ids and every token on their
             merge paths (the corpus encodes as with the full BPE);
- fixed-M:   builtin:python-stdlib, the restricted rule's fixed point keeping the tokens its own
             BPE uses at least M times (tokenizer.fit_compact; M = KEEP_MIN_COUNT is the default).

Each finished run is appended to --out as one JSON line, so runs can be split over processes
(--jobs I/N runs every Nth job from the I-th) and an interrupted sweep keeps what it measured;
--report reads that file and prints the table. The sweep's ms per step are only as steady as
the machine was; --timing measures time per step alone: each variant's trainer in turn, 30
steps after 5 of warm-up, for --rounds rounds, printing each variant's median and its ratio
to today's.

    python bench/compact_vocab.py [--variants today fixed-5 ...] [--seeds 1337 1338 1339]
        [--steps 2000] [--threads 0] [--jobs 0/1] [--set section.key=value ...] --out FILE
    python bench/compact_vocab.py --report FILE
    python bench/compact_vocab.py --timing [--variants ...] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import tiktoken
import torch

from minigpt.alerts import Alerts
from minigpt.batches import prepare_data
from minigpt.config import apply_values, load_config, parse_overrides
from minigpt.corpus_text import load_text
from minigpt.events import EvalEvent
from minigpt.health import tokens_per_byte
from minigpt.tokenizer import Cl100kTokenizer, Tokenizer, fit_compact, load_cl100k
from minigpt.train import Trainer

ROOT = Path(__file__).resolve().parent.parent
STDLIB, DOCS = "builtin:python-stdlib", "builtin:python-docs"
# The shipped defaults the "today" variant puts back on config.toml's.
TODAY: dict[str, object] = {"data.path": DOCS, "model.dropout": 0.1}
VARIANTS = ["today", "spelled", "closure", "fixed-1", "fixed-3", "fixed-5"]


def _counts(encoding: tiktoken.Encoding, text: str) -> np.ndarray:
    """How often text's encoding under a cl100k BPE uses each cl100k id."""
    ids = np.asarray(encoding.encode_ordinary(text), dtype=np.int64)
    return np.bincount(ids, minlength=load_cl100k().n_vocab)


def _merge_path(token: bytes, ranks: dict[bytes, int]) -> list[bytes]:
    """Every token the full BPE makes on its way from token's bytes to token."""
    parts, made = [bytes([b]) for b in token], []
    while len(parts) > 1:
        pairs = [(ranks.get(a + b, math.inf), i) for i, (a, b) in enumerate(pairwise(parts))]
        rank, i = min(pairs)
        if rank == math.inf:
            break
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
        made.append(parts[i])
    return made


def tokenizer_for(variant: str, text: str) -> Tokenizer:
    """The compact tokenizer a variant keeps for text."""
    full = load_cl100k()
    used = np.flatnonzero(_counts(full, text))
    if variant in ("today", "spelled"):
        return Cl100kTokenizer(used, rule="spelled")
    if variant == "closure":
        ranks = {full.decode_single_token_bytes(i): i for i in range(full.n_vocab - 21)}
        closure = set(used.tolist())
        for token_id in used.tolist():
            token = full.decode_single_token_bytes(token_id)
            closure.update(ranks[t] for t in _merge_path(token, ranks))
        return Cl100kTokenizer(sorted(closure))
    min_count = int(variant.removeprefix("fixed-"))
    return fit_compact(lambda encoding: _counts(encoding, text), min_count)


def held_out_by_both() -> str:
    """The text of today's val split: held out by every variant (python-stdlib ends with
    the python-docs text, and its val split is longer than this)."""
    text = load_text(DOCS)[0]
    today = tokenizer_for("today", text)
    ids = today.encode(text)
    return today.decode(ids[int(0.9 * len(ids)) :])


def bits_per_byte(trainer: Trainer, text: str) -> float:
    """The eval model's loss on text, in bits per UTF-8 byte."""
    ids = torch.tensor(trainer.corpus.tokenizer.encode(text))
    return full_loss(trainer, ids) / math.log(2) * len(ids) / len(text.encode("utf-8"))


def full_loss(trainer: Trainer, val: torch.Tensor) -> float:
    """Mean loss per token over every context_length window of val, in nats."""
    model, block = trainer.eval_model, trainer.config.model.context_length
    val = val.to(torch.int64)
    starts = list(range(0, len(val) - block - 1, block))
    total, count = 0.0, 0
    with torch.no_grad():
        for first in range(0, len(starts), 64):
            batch = starts[first : first + 64]
            x = torch.stack([val[s : s + block] for s in batch])
            y = torch.stack([val[s + 1 : s + block + 1] for s in batch])
            total += model.loss(x, y).item() * y.numel()
            count += y.numel()
    return total / count


def trainer_for(
    variant: str, seed: int, steps: int, threads: int, values: dict[str, object] | None = None
) -> Trainer:
    """A fresh trainer of the default config (values on top) on a variant's corpus and
    vocabulary."""
    base = load_config(ROOT / "config.toml")
    data = TODAY if variant == "today" else {"data.path": STDLIB}
    run = data | {"train.seed": seed, "train.max_iters": steps, "train.threads": threads}
    config = apply_values(base, run | (values or {}))
    d = config.data
    corpus = prepare_data(
        d.path,
        d.tokenizer,
        True,
        d.train_split,
        config.model.context_length,
        fitted=tokenizer_for(variant, load_text(d.path, cache_dir=ROOT / "data" / "cache")[0]),
    )
    return Trainer(config, corpus)


def timing(variants: list[str], rounds: int) -> None:
    """Median ms per training step of each variant, measured in turns, and the ratio to today."""
    trainers = {variant: trainer_for(variant, 1337, 10_000, 0) for variant in variants}
    times: dict[str, list[float]] = {variant: [] for variant in variants}
    for _ in range(rounds):
        for variant, trainer in trainers.items():
            for _ in range(5):
                trainer.train_step()
            started = time.perf_counter()
            for _ in range(30):
                trainer.train_step()
            times[variant].append((time.perf_counter() - started) / 30 * 1000)
    base = statistics.median(times.get("today", times[variants[0]]))
    for variant, ms in times.items():
        rows = trainers[variant].corpus.tokenizer.vocab_size
        ratio = statistics.median(ms) / base
        print(f"{variant}: {rows:,} rows, {statistics.median(ms):.0f} ms/step, {ratio:.2f}x")


def run_one(
    variant: str, seed: int, steps: int, threads: int, values: dict[str, object]
) -> dict[str, object]:
    """Train one variant with one seed (values on the default config); its figures."""
    trainer = trainer_for(variant, seed, steps, threads, values)
    config, corpus = trainer.config, trainer.corpus
    tokenizer = corpus.tokenizer
    alerts = Alerts(tokenizer.vocab_size, lambda: config)
    per_byte = tokens_per_byte(tokenizer, corpus.val)
    before = max(0, steps - 400)
    interval, times, raised, bpb = config.train.eval_interval, [], [], {}
    for step in range(steps + 1):
        if step % interval == 0 or step == steps:
            losses = trainer.estimate_loss()
            event = EvalEvent(
                step=step,
                train_loss=losses["train"],
                val_loss=losses["val"],
                best_val_loss=min(losses["val"], trainer.best_val_loss),
                epochs=trainer.tokens_seen / len(corpus.train),
            )
            trainer.best_val_loss = min(trainer.best_val_loss, losses["val"])
            raised += [(a.kind, step) for a in alerts.feed(event)]
        if step in (before, steps):
            bpb[step] = full_loss(trainer, corpus.val) / math.log(2) * per_byte
        if step == steps:
            break
        started = time.perf_counter()
        stepped = trainer.train_step()
        times.append(time.perf_counter() - started)
        raised += [(a.kind, step + 1) for a in alerts.feed(stepped)]
    return {
        "variant": variant + "".join(f", {key}={value}" for key, value in values.items()),
        "seed": seed,
        "steps": steps,
        "rows": tokenizer.vocab_size,
        "tokens": int(corpus.num_tokens),
        "epochs": trainer.tokens_seen / len(corpus.train),
        "ms_per_step": statistics.median(times) * 1000,
        "val_bpb_before": bpb[before],
        "val_bpb": bpb[steps],
        "common_bpb": bits_per_byte(trainer, held_out_by_both()),
        "alerts": raised,
    }


def report(path: Path) -> None:
    """Print the table of a results file: medians over seeds, per variant."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    today = [r["ms_per_step"] for r in rows if r["variant"] == "today"]
    print(
        "| variant | rows | corpus tokens | seeds | ms/step (x today) | val bpb, end (seeds)"
        " | val bpb 400 steps before | bpb on today's val text | alerts |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|---|")
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        ms = statistics.median(r["ms_per_step"] for r in mine)
        ratio = f" ({ms / statistics.median(today):.2f}x)" if today else ""
        ends = ", ".join(f"{r['val_bpb']:.4f}" for r in mine)
        alerts = sorted({f"{kind}@{step}" for r in mine for kind, step in r["alerts"]})
        print(
            f"| {variant} | {mine[0]['rows']:,} | {mine[0]['tokens']:,} | {len(mine)} |"
            f" {ms:.0f}{ratio} | **{statistics.median(r['val_bpb'] for r in mine):.4f}**"
            f" ({ends}) | {statistics.median(r['val_bpb_before'] for r in mine):.4f} |"
            f" {statistics.median(r['common_bpb'] for r in mine):.4f} |"
            f" {', '.join(alerts) or 'none'} |"
        )


def main() -> None:
    """Run the sweep's share of jobs, or report a results file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1337, 1338, 1339])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--jobs", default="0/1", help="I/N: every Nth job from the I-th")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.report:
        report(args.report)
        return
    if args.timing:
        timing(args.variants, args.rounds)
        return
    if args.out is None:
        sys.exit("--out FILE is needed to run the sweep")
    values = parse_overrides(args.set)
    first, every = map(int, args.jobs.split("/"))
    jobs = [(v, s) for s in args.seeds for v in args.variants][first::every]
    for variant, seed in jobs:
        result = run_one(variant, seed, args.steps, args.threads, values)
        with args.out.open("a") as f:
            f.write(json.dumps(result) + "\n")
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

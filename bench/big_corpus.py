"""Streaming a big corpus: time, tokens/s and peak RSS of prepare_data at gigabyte sizes.

Writes a corpus of --size bytes (default 2 GB) by repeating a generated text
(or --source PATH), then, for each tokenizer, in a fresh process: prepare_data
(tokenizing into a token file), prepare_data again (reusing that file), then
draws --batches training batches from the memory-mapped ids. Prints time,
tokens/s and the process's peak RSS (ru_maxrss) after each step; RssAnon and
RssFile split the RSS after the batches into private memory and mapped
token-file pages (page cache, which the kernel reclaims under pressure).
Removes everything it wrote at the end.

    python bench/big_corpus.py [--size 2e9] [--tokenizers byte char] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The words of the generated text (split where they are used).
WORDS = (
    "the of and to in is was it that for on with as his he at by this had not but from be"
    " time people world river mountain light evening garden letter window morning question"
    " café naïve über straße smörgåsbord façade jalapeño piñata coöperate résumé"
)
# A few hundred CJK characters and emoji, so the char vocabulary needs uint16 ids.
RARE = [chr(c) for c in range(0x4E00, 0x4E00 + 300)] + ["🙂", "🚀", "✓", "—", "…"]


def generated_text(size: int, seed: int = 0) -> str:
    """About `size` characters of word salad in lines and paragraphs, with rare characters."""
    rng = random.Random(seed)
    vocabulary = WORDS.split()
    lines, length = [], 0
    while length < size:
        words = rng.choices(vocabulary, k=rng.randint(4, 16))
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), "".join(rng.choices(RARE, k=3)))
        line = " ".join(words).capitalize() + rng.choice([".", ",", ";", "?", "!"])
        line += "\n\n" if rng.random() < 0.1 else "\n"
        lines.append(line)
        length += len(line)
    return "".join(lines)


def write_corpus(path: Path, size: int, source: Path | None) -> None:
    """Write `size` bytes to path by repeating a block of text (cut at a line end)."""
    block = source.read_bytes() if source else generated_text(4 << 20).encode("utf-8")
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        rest = block[: size % len(block)]
        f.write(rest[: rest.rfind(b"\n") + 1])


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def rss_split_mb() -> dict[str, float]:
    """Current private (RssAnon) and file-backed (RssFile) resident memory, in MB."""
    with open("/proc/self/status", encoding="ascii") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {key: int(fields[key].split()[0]) * 1024 / 1e6 for key in ("RssAnon", "RssFile")}


def child(args: argparse.Namespace) -> None:
    """Prepare the corpus twice with one tokenizer, draw batches; print one JSON line."""
    import torch

    from minigpt.batches import get_batch, prepare_data

    shown = {"stage": ""}

    def progress(stage: str, fraction: float) -> None:
        """Print each stage's progress every 10%."""
        if stage != shown["stage"] or fraction >= shown["next"]:
            print(f"  {args.child}: {stage} {fraction:.0%}", file=sys.stderr, flush=True)
            shown.update(stage=stage, next=min(1.0, round(fraction, 1) + 0.1))

    result: dict[str, object] = {"tokenizer": args.child, "start_rss_mb": peak_rss_mb()}
    for step in ("prepare", "reuse"):
        started = time.perf_counter()
        corpus = prepare_data(
            args.corpus, args.child, True, 0.9, 256, cache_dir=args.cache, progress=progress
        )
        seconds = time.perf_counter() - started
        result[step] = {
            "seconds": seconds,
            "tokens_per_s": corpus.num_tokens / seconds,
            "peak_rss_mb": peak_rss_mb(),
        }
    result |= {"tokens": corpus.num_tokens, "dtype": str(corpus.train.dtype)}
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(args.batches):
        get_batch(corpus.train, 64, 256, generator)
    result["batches"] = {
        "count": args.batches,
        "ms_per_batch": (time.perf_counter() - started) * 1000 / max(1, args.batches),
        "peak_rss_mb": peak_rss_mb(),
        **rss_split_mb(),
    }
    print(json.dumps(result), flush=True)


def main() -> None:
    """Write the corpus, run one child process per tokenizer, print a table, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=2e9, help="corpus bytes (default 2e9)")
    parser.add_argument("--tokenizers", nargs="+", default=["byte", "char"])
    parser.add_argument("--source", type=Path, help="a text file to repeat instead of generated")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where to write")
    parser.add_argument("--batches", type=int, default=1000, help="batches drawn (64 x 256)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    size = int(args.size)
    need = size * 6  # the corpus, plus up to 4 bytes per token (cl100k raw + compact ids)
    free = shutil.disk_usage(args.dir).free
    if free < need:
        sys.exit(
            f"{args.dir} has {free / 1e9:.1f} GB free; --size {size:g} needs ~{need / 1e9:.1f}"
        )
    work = Path(tempfile.mkdtemp(prefix="big-corpus-", dir=args.dir))
    try:
        corpus, cache = work / "corpus.txt", work / "cache"
        started = time.perf_counter()
        write_corpus(corpus, size, args.source)
        print(f"wrote {corpus.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - started:.1f}s")
        results = []
        for tokenizer in args.tokenizers:
            command = [sys.executable, __file__, "--child", tokenizer, "--corpus", str(corpus)]
            command += ["--cache", str(cache), "--batches", str(args.batches)]
            out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            shutil.rmtree(cache, ignore_errors=True)
        report(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: list[dict]) -> None:
    """One table row per tokenizer and step."""
    print(f"{'tokenizer':<12} {'step':<8} {'time':>8} {'tokens/s':>12} {'peak RSS':>9}  notes")
    for r in results:
        for step in ("prepare", "reuse"):
            s = r[step]
            prepared = step == "prepare"
            note = f"{r['tokens']:,} tokens, {r['dtype']}" if prepared else "same call again"
            rate = f"{s['tokens_per_s']:12,.0f}" if prepared else f"{'-':>12}"
            print(
                f"{r['tokenizer']:<12} {step:<8} {s['seconds']:7.1f}s {rate}"
                f" {s['peak_rss_mb']:7.0f}MB  {note}"
            )
        b = r["batches"]
        print(
            f"{r['tokenizer']:<12} {'batches':<8} {b['ms_per_batch']:6.2f}ms {'':>12}"
            f" {b['peak_rss_mb']:7.0f}MB  {b['count']} batches; now RssAnon"
            f" {b['RssAnon']:.0f}MB, RssFile {b['RssFile']:.0f}MB (mapped token file)"
        )
        print(f"{'':<12} {'(start)':<8} {'':>8} {'':>12} {r['start_rss_mb']:7.0f}MB  after imports")


if __name__ == "__main__":
    main()

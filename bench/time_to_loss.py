"""Time to a good model: wall time from process start to a target validation loss.

For each seed, trains the lesson's code (bench/lesson_reference.py), then, given
--nanogpt, nanoGPT's own train.py from a checkout of it, and then `minigpt train`
once per variant, one after the other, at nanoGPT's CPU setting (tinyshakespeare
chars, context 64, batch 12, 4 blocks, 4 heads, d_model 128, dropout 0, 2,000
iterations, an eval every 250 on 20 batches: the command of nanoGPT's README for
a CPU). minigpt gets only those keys: optimizer, schedule and rates stay at its
shipped defaults unless a variant sets them. For each run it reports the seconds
from launching the process to its first eval at or below --target, the val loss
at the last step, and the time to target as a ratio of the lesson code's (and
nanoGPT's) wall time for all their iterations in the same round. nanoGPT seeds
itself (1337) whatever the round's seed; its checkout is copied to a temporary
folder, where its prepare.py turns --data into its shakespeare_char data. --plot
draws val loss against seconds since launch for the first seed.

    python bench/time_to_loss.py [--seeds 1337 1 2] [--target 1.8857]
        [--nanogpt PATH] [--variant NAME KEY=VALUE ...] [--switches] [--no-default]
        [--threads N] [--stop-at-target] [--plot docs/time_to_loss.png] [--keep-runs DIR]

A variant is a name and minigpt overrides, e.g. --variant adamw 'train.optimizer="adamw"'.
--switches adds the lesson's model and each of [model]'s switches on alone, then rotary
with qk_norm, every switch set in each (so the shipped defaults do not matter).
--threads gives every process N torch threads (OMP_NUM_THREADS, and minigpt's
train.threads); with taskset, two rounds can run side by side on two cores.
--stop-at-target ends each minigpt run at its target (no final loss, faster sweeps).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
SHAKESPEARE = HERE.parent.parent / "shared" / "data" / "tinyshakespeare.txt"
SETTING = {
    "context-length": 64,
    "batch-size": 12,
    "d-model": 128,
    "num-heads": 4,
    "num-blocks": 4,
    "dropout": 0.0,
    "eval-iters": 20,
}
# [model]'s switches at the lesson's values, and what each --switches variant changes.
LESSON_SWITCHES = {
    "model.activation": '"relu"',
    "model.position": '"learned"',
    "model.qk_norm": "false",
    "model.logit_softcap": "0.0",
    "model.residual_scalars": "false",
}
SWITCHED: dict[str, dict[str, str]] = {
    "lesson": {},
    "relu2": {"model.activation": '"relu2"'},
    "gelu": {"model.activation": '"gelu"'},
    "rotary": {"model.position": '"rotary"'},
    "qk_norm": {"model.qk_norm": "true"},
    "softcap15": {"model.logit_softcap": "15.0"},
    "residual_scalars": {"model.residual_scalars": "true"},
    "rotary+qk_norm": {"model.position": '"rotary"', "model.qk_norm": "true"},
}
POLL_S = 0.1  # how often a running minigpt's metrics.jsonl is read for new evals
NANOGPT_EVAL = re.compile(r"step (\d+): train loss [\d.]+, val loss ([\d.]+)")


@dataclass
class Curve:
    """One training process: (seconds since launch, step, val loss) at each eval."""

    name: str
    seed: int
    evals: list[tuple[float, int, float]] = field(default_factory=list)
    wall: float = 0.0  # launch to exit

    def time_to(self, target: float) -> float | None:
        """Seconds from launch to the first eval at or below target."""
        return next((s for s, _, val in self.evals if val <= target), None)


@dataclass
class Round:
    """One seed's runs: the references (when run) and minigpt's variants."""

    seed: int
    lesson: Curve | None
    nanogpt: Curve | None
    runs: list[Curve]


def _stamped(
    curve: Curve, command: list[str], cwd: Path | None, parse: Callable[[str], tuple | None]
) -> Curve:
    """Run a reference to its end, stamping each (step, val loss) parse finds in its output."""
    launched = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        with subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=errors, text=True
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                if found := parse(line):
                    curve.evals.append((time.perf_counter() - launched, *found))
        curve.wall = time.perf_counter() - launched
        if process.returncode:
            errors.seek(0)
            raise SystemExit(f"{curve.name} failed:\n{errors.read().decode(errors='replace')}")
    return curve


def reference(args: argparse.Namespace, seed: int) -> Curve:
    """The lesson's code, its eval lines stamped as they arrive."""
    command = [sys.executable, "-u", str(HERE / "lesson_reference.py"), "--data", str(args.data)]
    command += ["--tokenizer", "char", "--learning-rate", "1e-3", "--seed", str(seed)]
    command += [f"--{key}={value}" for key, value in SETTING.items()]
    command += ["--max-iters", str(args.max_iters), "--eval-interval", str(args.eval_interval)]

    def parse(line: str) -> tuple[int, float]:
        point = json.loads(line)
        return point["step"], point["val"]

    return _stamped(Curve("lesson's code", seed), command, None, parse)


def prepare_nanogpt(checkout: Path, data: Path, folder: Path) -> Path:
    """A copy of a nanoGPT checkout in folder, with data as its shakespeare_char corpus."""
    copy = folder / "nanoGPT"
    shutil.copytree(checkout, copy, ignore=shutil.ignore_patterns(".git", "out-*"))
    prepared = copy / "data" / "shakespeare_char"
    shutil.copyfile(data, prepared / "input.txt")  # prepare.py downloads only when it is missing
    subprocess.run([sys.executable, "prepare.py"], cwd=prepared, check=True, capture_output=True)
    return copy


def nanogpt(args: argparse.Namespace, copy: Path, seed: int) -> Curve:
    """nanoGPT's train.py with its README's CPU command, its eval lines stamped."""
    command = [sys.executable, "-u", "train.py", "config/train_shakespeare_char.py"]
    command += ["--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1"]
    command += ["--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4"]
    command += ["--n_embd=128", "--dropout=0.0", f"--max_iters={args.max_iters}"]
    command += [f"--lr_decay_iters={args.max_iters}", f"--eval_interval={args.eval_interval}"]

    def parse(line: str) -> tuple[int, float] | None:
        found = NANOGPT_EVAL.match(line)
        return (int(found[1]), float(found[2])) if found else None

    return _stamped(Curve("nanoGPT", seed), command, copy, parse)


def minigpt(args: argparse.Namespace, name: str, overrides: list[str], seed: int) -> Curve:
    """`minigpt train` with nanoGPT's setting plus overrides, its evals read from
    metrics.jsonl (their own time stamps); stopped at the target with --stop-at-target."""
    values = [
        'data.tokenizer="char"',
        f"model.context_length={SETTING['context-length']}",
        f"model.d_model={SETTING['d-model']}",
        f"model.num_heads={SETTING['num-heads']}",
        f"model.num_blocks={SETTING['num-blocks']}",
        f"model.dropout={SETTING['dropout']}",
        f"train.batch_size={SETTING['batch-size']}",
        f"train.eval_iters={SETTING['eval-iters']}",
        f"train.max_iters={args.max_iters}",
        f"train.eval_interval={args.eval_interval}",
        f"train.seed={seed}",
        *overrides,
    ]
    curve = Curve(name, seed)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = args.keep_runs / f"{name}-{seed}" if args.keep_runs else Path(folder) / "run"
        metrics = run_dir / "metrics.jsonl"
        command = [sys.executable, "-m", "minigpt", "train", "--run-dir", str(run_dir)]
        command += ["--data", str(args.data), *(f for v in values for f in ("--set", v))]
        launched, epoch = time.perf_counter(), time.time()
        with tempfile.TemporaryFile() as errors:  # a file, not a pipe: it never fills up
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
            if args.stop_at_target:
                curve.evals = _until_target(process, metrics, epoch, args.target)
            process.wait()
            curve.wall = time.perf_counter() - launched
            errors.seek(0)
            failure = errors.read().decode(errors="replace")
        lines = metrics.read_text(encoding="utf-8").splitlines() if metrics.exists() else []
        curve.evals = _evals(lines, epoch)
    if process.returncode and curve.time_to(args.target) is None:
        raise SystemExit(f"minigpt train failed:\n{failure}")
    return curve


def _until_target(
    process: subprocess.Popen, metrics: Path, epoch: float, target: float
) -> list[tuple[float, int, float]]:
    """Follow metrics.jsonl while the process runs, reading only what was added since
    (the run it times shares the CPU), and end the process at its first eval at or below
    the target; the evals seen."""
    evals: list[tuple[float, int, float]] = []
    offset, partial = 0, b""
    while process.poll() is None:
        time.sleep(POLL_S)
        try:
            with metrics.open("rb") as f:
                f.seek(offset)
                added = f.read()
        except FileNotFoundError:
            continue
        offset += len(added)
        *lines, partial = (partial + added).split(b"\n")
        evals += _evals([line.decode("utf-8") for line in lines if b'"eval"' in line], epoch)
        if any(val <= target for _, _, val in evals):
            process.terminate()
            break
    return evals


def _evals(lines: list[str], epoch: float) -> list[tuple[float, int, float]]:
    """(seconds since epoch, step, val loss) of the complete eval lines among `lines`."""
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a killed process
    evals = [e for e in events if e.get("event") == "eval" and e.get("val_loss") is not None]
    return [(e["time"] - epoch, e["step"], e["val_loss"]) for e in evals]


def _switched(changes: dict[str, str]) -> list[str]:
    """Overrides setting every switch: the lesson's values with changes on top."""
    return [f"{key}={value}" for key, value in (LESSON_SWITCHES | changes).items()]


def report(rounds: list[Round], target: float) -> None:
    """A markdown table per run, then each run's median ratios over the seeds."""
    print(f"\n| run | seed | to {target} (s) | / lesson's wall | / nanoGPT's wall |", end="")
    print(" val at last step | wall (s) |\n|---|---|---|---|---|---|---|")
    ratios: dict[str, dict[str, list[float]]] = {}
    for r in rounds:
        for curve in [c for c in (r.lesson, r.nanogpt) if c] + r.runs:
            reached = curve.time_to(target)
            shares = [_share(reached, ref) for ref in (r.lesson, r.nanogpt)]
            for against, share in zip(("lesson", "nanoGPT"), shares, strict=True):
                if share is not None:
                    ratios.setdefault(curve.name, {}).setdefault(against, []).append(share)
            _, step, val = curve.evals[-1] if curve.evals else (0, 0, float("nan"))
            print(
                f"| {curve.name} | {curve.seed} | {_number(reached, '.1f')} | "
                f"{_number(shares[0], '.3f')} | {_number(shares[1], '.3f')} | "
                f"{val:.4f} (step {step}) | {curve.wall:.1f} |"
            )
    print()
    for name, by_reference in ratios.items():
        for against, values in by_reference.items():
            median = statistics.median(values)
            print(f"{name}: median {median:.3f} of {against}'s wall over {len(values)} seeds")


def _share(reached: float | None, ref: Curve | None) -> float | None:
    """Seconds to target as a share of a reference's wall time, when both are known."""
    return None if reached is None or ref is None else reached / ref.wall


def _number(value: float | None, spec: str) -> str:
    """A figure, or "not reached"."""
    return "not reached" if value is None else format(value, spec)


def plot(rounds: list[Round], target: float, out: Path) -> None:
    """Val loss against seconds since launch, every run of the first seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = rounds[0]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=120)
    for curve in [c for c in (first.lesson, first.nanogpt) if c] + first.runs:
        axes.plot([p[0] for p in curve.evals], [p[2] for p in curve.evals], marker=".")
        axes.lines[-1].set_label(curve.name)
    axes.axhline(target, color="grey", linestyle=":", label=f"target {target}")
    axes.set_xlabel("seconds since the process started")
    axes.set_ylabel("validation loss")
    axes.set_title(f"tinyshakespeare, char, nanoGPT's CPU setting, seed {first.seed}")
    axes.set_ylim(top=min(3.0, axes.get_ylim()[1]))
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    print(f"wrote {out}")


def run_round(
    args: argparse.Namespace, variants: list[tuple[str, list[str]]], seed: int, copy: Path | None
) -> Round:
    """One seed: the references, then each variant, one after the other."""
    lesson = None if args.no_reference else reference(args, seed)
    nano = nanogpt(args, copy, seed) if copy else None
    for ref in (r for r in (lesson, nano) if r):
        print(f"seed {seed}: {ref.name} {ref.wall:.1f} s", flush=True)
    runs = []
    for name, overrides in variants:
        runs.append(minigpt(args, name, overrides, seed))
        reached = runs[-1].time_to(args.target)
        print(f"seed {seed}: {name} reached {args.target} at {reached} s", flush=True)
    return Round(seed, lesson, nano, runs)


def main() -> None:
    """Run the rounds, print the table, draw the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHAKESPEARE)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1337])
    parser.add_argument("--target", type=float, default=1.8857)
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--eval-interval", type=int, default=250)
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar="NAME")
    parser.add_argument("--switches", action="store_true", help="each [model] switch alone")
    parser.add_argument("--threads", type=int, help="torch threads of every process")
    parser.add_argument("--no-default", action="store_true", help="skip the shipped defaults")
    parser.add_argument("--stop-at-target", action="store_true")
    parser.add_argument("--no-reference", action="store_true", help="sweeps: no lesson's code")
    parser.add_argument("--nanogpt", type=Path, help="a checkout of nanoGPT to time as well")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--keep-runs", type=Path, help="keep minigpt's runs here, NAME-SEED")
    args = parser.parse_args()
    variants = [] if args.no_default else [("minigpt defaults", [])]
    variants += [(name, list(overrides)) for name, *overrides in args.variant]
    if args.switches:
        variants += [(name, _switched(changes)) for name, changes in SWITCHED.items()]
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for nanoGPT and the lesson's code
        variants = [(name, [*values, f"train.threads={args.threads}"]) for name, values in variants]
    with tempfile.TemporaryDirectory() as folder:
        copy = prepare_nanogpt(args.nanogpt, args.data, Path(folder)) if args.nanogpt else None
        rounds = [run_round(args, variants, seed, copy) for seed in args.seeds]
    report(rounds, args.target)
    if args.plot:
        plot(rounds, args.target, args.plot)


if __name__ == "__main__":
    main()

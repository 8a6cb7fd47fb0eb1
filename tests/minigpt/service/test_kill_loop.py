"""kill -9 at random moments, many times over: every time the run resumes whole."""

import json
import random
import time
from pathlib import Path

import pytest

from minigpt.checkpoint import load_checkpoint
from minigpt.config import Config, apply_values, config_to_toml
from minigpt.events import CheckpointEvent, StepEvent
from minigpt.rundir.layout import RunDir
from minigpt.service.client import Client
from minigpt.service.run import Run
from tests.tiny import THREADS

pytestmark = pytest.mark.trains

ROUNDS = 15
CHECKPOINT_INTERVAL = 10
MOMENTS = ("during a step", "during a checkpoint write", "during sampling")


@pytest.fixture
def kill_config(tmp_path: Path, corpus_file: Path) -> Path:
    """A model big enough that writing its checkpoint takes a while (~19 MB with AdamW)."""
    values = {
        "model.context_length": 32,
        "model.d_model": 256,
        "model.num_heads": 4,
        "model.num_blocks": 2,
        "train.batch_size": 4,
        "train.max_iters": 100_000,
        "train.eval_interval": CHECKPOINT_INTERVAL,
        "train.eval_iters": 1,
        "train.checkpoint_interval": CHECKPOINT_INTERVAL,
        # AdamW: its two moments make the checkpoint big, and its step is cheap on any CPU
        # (Muon's Newton-Schulz at this width is 6x the step here); Muon's state resuming
        # whole is test_train.py's test_resume_reproduces_the_uninterrupted_losses.
        "train.optimizer": "adamw",
        "train.threads": THREADS,
        "data.path": str(corpus_file),
        "data.tokenizer": "char",
        "sample.at_eval": False,
    }
    path = tmp_path / "kill.toml"
    path.write_text(config_to_toml(apply_values(Config(), values), ""), encoding="utf-8")
    return path


def _wait_for_checkpoint_write(run_dir: Path) -> None:
    """Poll until a checkpoint's temporary file exists: the engine is writing it now."""
    deadline = time.monotonic() + 60
    while not any(run_dir.glob(".model.ckpt.*.tmp")):
        assert time.monotonic() < deadline, "no checkpoint write seen in 60 s"


def _kill_at(client: Client, run_dir: Path, moment: str, rng: random.Random) -> int:
    """Wait for the moment, kill -9 the engine there; return the last step it reported."""
    step = client.wait_for("step")
    assert isinstance(step, StepEvent) and step.step is not None, "engines number their steps"
    last = step.step
    if moment == "during a checkpoint write":
        _wait_for_checkpoint_write(run_dir)
    else:
        if moment == "during sampling":
            client.send("sample", prompt="the cat", max_new_tokens=100_000)
            client.wait_for("sample_token")
        time.sleep(rng.uniform(0, 0.02))
    assert client.process is not None, "engines() spawns, so the client holds its process"
    client.process.kill()
    client.process.wait()
    return last


def _check_files(run_dir: Path) -> int:
    """Both checkpoints load and metrics.jsonl parses (a torn last line aside);
    return model.ckpt's step."""
    best = run_dir / "best.ckpt"
    if best.exists():
        load_checkpoint(best)
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines[:-1]:
        json.loads(line)
    return load_checkpoint(run_dir / "model.ckpt")["step"]


def test_kill_9_anywhere_then_resume(engines, tmp_path: Path, kill_config: Path) -> None:
    """Each round resumes from the last checkpoint (at most checkpoint_interval steps
    lost), with metrics.jsonl rewritten whole up to it and no temporary file left."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    run_dir = tmp_path / "run"
    client = engines(run_dir, "--config", str(kill_config), "--start")
    client.wait_for(CheckpointEvent)
    for number in range(ROUNDS):
        moment = MOMENTS[number % len(MOMENTS)]
        context = f"round {number} ({moment}, seed {seed})"
        last = _kill_at(client, run_dir, moment, rng)
        client.close()
        saved = _check_files(run_dir)
        if moment == "during a checkpoint write":
            assert list(run_dir.glob(".model.ckpt.*.tmp")), f"{context}: the kill came too late"
        assert last - saved <= CHECKPOINT_INTERVAL, context
        client = engines(run_dir, "--resume")
        assert client.hello.step == saved, context
        steps = [e.step for e in RunDir(run_dir).read_metrics() if isinstance(e, StepEvent)]
        assert steps == list(range(1, saved + 1)), context
        for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            json.loads(line)  # repaired: no torn line left
        assert not list(run_dir.glob(".*.tmp")), context
        client.send("start")
        assert client.wait_for("step").step == saved + 1, context
    client.send("shutdown")
    assert client.process.wait(30) == 0


def test_resume_repairs_a_torn_metrics_line(tmp_path: Path, corpus_file: Path, tiny_config) -> None:
    """A metrics.jsonl that ends mid-line (the writer was killed) is rewritten whole."""
    run = Run.start(tiny_config(corpus_file, **{"train.max_iters": 20}), tmp_path / "run")
    while not run.done:
        run.advance()
    run.close()
    with open(run.run_dir.metrics, "a", encoding="utf-8") as f:
        f.write('{"event": "step", "step": 21, "lo')
    Run.resume(None, tmp_path / "run").close()
    lines = run.run_dir.metrics.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["step"] for line in lines if '"step"' in line][-1] == 20

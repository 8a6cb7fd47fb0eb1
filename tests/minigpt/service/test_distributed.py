"""torchrun with two CPU processes (gloo): one run, falling losses, portable checkpoints,
and rank 0 steering every rank."""

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch.distributed as dist

from minigpt.checkpoint import load_checkpoint
from minigpt.cli.main import main
from minigpt.distributed import EXIT, Cluster
from minigpt.events import HelloEvent, StateEvent, StepEvent
from minigpt.rundir.layout import RunDir
from minigpt.service.client import Client
from minigpt.service.follower import follow
from minigpt.service.run import Run
from minigpt.train import Trainer

pytestmark = pytest.mark.trains


def _torchrun(config_file: Path, run_dir: Path, *extra: str) -> list[str]:
    """The command that trains run_dir with two processes on this machine."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "minigpt", "train", "--config", str(config_file), "--run-dir", str(run_dir),
        *extra,
    ]  # fmt: skip


def test_rank_0_steers_every_rank_and_the_run_resumes_alone(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A client attached to rank 0 pauses the job (no rank steps on), changes and resumes
    it, and stops it: every process exits 0. One run directory holds every step, with
    finite falling losses over twice the batch (two micro-steps, the first skipping the
    gradient exchange); its checkpoint samples and resumes in a single process."""
    run_dir = tmp_path / "runs" / "ddp"
    command = _torchrun(config_file, run_dir, "--set", "train.grad_accum_steps=2")
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "engine.sock").exists():
            assert job.poll() is None and time.monotonic() < deadline, "rank 0 never served"
            time.sleep(0.2)
        client = Client.connect(run_dir)
        assert client.hello.model.tokens_per_step == 2 * 2 * 4 * 16
        client.wait_for(lambda e: isinstance(e, StepEvent) and e.step is not None and e.step >= 5)
        client.send("pause")
        client.wait_for(lambda e: isinstance(e, (StateEvent, HelloEvent)) and e.state == "paused")
        assert not [e for e in client.events(2.0) if isinstance(e, StepEvent)]
        constant = {"train.learning_rate": 0.002, "train.min_lr": 0.002, "train.warmup_iters": 0}
        client.send("set", values=constant)
        client.wait_for("config_applied")
        client.send("resume")
        after = client.wait_for(lambda e: isinstance(e, StepEvent) and e.lr == 0.002)
        assert isinstance(after, StepEvent) and after.step is not None and after.loss is not None
        assert math.isfinite(after.loss)
        client.wait_for(lambda e: isinstance(e, StepEvent) and e.step is not None and e.step >= 60)
        client.send("shutdown")
        assert job.wait(60) == 0, job.stdout.read().decode() if job.stdout else ""
        client.close()
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert os.listdir(tmp_path / "runs") == ["ddp"]
    saved = load_checkpoint(run_dir / "model.ckpt")["step"]
    assert saved >= max(after.step, 60)
    steps = [e for e in RunDir(run_dir).read_metrics() if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == list(range(1, saved + 1))
    losses = [e.loss for e in steps if e.loss is not None and math.isfinite(e.loss)]
    assert len(losses) == len(steps), "every step's loss is finite"
    assert sum(losses[-10:]) < sum(losses[:10])
    sample = ["sample", "--run-dir", str(run_dir), "--prompt", "the", "--max-new-tokens", "9"]
    assert main(sample) == 0, capsys.readouterr().err
    resume = ["train", "--run-dir", str(run_dir), "--resume", "--set"]
    assert main([*resume, f"train.max_iters={saved + 10}"]) == 0, capsys.readouterr().err
    assert load_checkpoint(run_dir / "model.ckpt")["step"] == saved + 10


def test_a_follower_resumes_from_the_runs_checkpoint(
    corpus_file: Path, tmp_path: Path, tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rank other than 0 resuming a run builds its trainer from the run's model.ckpt (in a
    one-process gloo group whose rank 0 says exit at once)."""
    run = Run.start(tiny_config(corpus_file, **{"train.max_iters": 6}), tmp_path / "run")
    while not run.done:
        run.advance()
    run.close()
    loaded: list[int] = []
    load = Trainer.load_state_dict

    def spy(trainer: Trainer, state: dict) -> None:
        load(trainer, state)
        loaded.append(trainer.step)

    monkeypatch.setattr(Trainer, "load_state_dict", spy)
    monkeypatch.setattr(Cluster, "receive", lambda cluster: {"op": EXIT, "config": None})
    store = f"file://{tmp_path / 'store'}"
    dist.init_process_group("gloo", init_method=store, rank=0, world_size=1)
    try:
        cluster = Cluster(rank=0, world_size=1, local_rank=0, local_world_size=1)
        assert follow(None, tmp_path / "run", resume=True, cluster=cluster) == 0
    finally:
        dist.destroy_process_group()
    assert loaded == [6]

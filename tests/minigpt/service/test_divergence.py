"""A loss gone NaN or infinite: training pauses, no NaN checkpoint, the user recovers; a step
that fails otherwise ends `minigpt train`."""

import math
import signal
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from minigpt.checkpoint import load_checkpoint
from minigpt.cli.main import main
from minigpt.config import apply_values
from minigpt.distributed import Cluster
from minigpt.errors import CheckpointError, DivergedError
from minigpt.events import AlertEvent, CheckpointEvent, HelloEvent
from minigpt.service.run import Run

pytestmark = pytest.mark.trains

HUGE_LR = 1e30  # weights jump to ~1e30 in one step; the next forward overflows to NaN


def _finite(state: dict) -> bool:
    """Whether every tensor of a checkpoint's weights is finite."""
    return all(bool(torch.isfinite(w).all()) for w in state["model"].values())


def test_diverged_loss_raises_and_rollback_restores_finite_weights(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """The first step whose loss is not finite raises; rolling back before any checkpoint
    gives a fresh model at step 0."""
    run = Run.start(tiny_config(corpus_file, **{"train.warmup_iters": 0}), tmp_path / "run")
    constant = {"train.learning_rate": HUGE_LR, "train.min_lr": HUGE_LR}
    run.trainer.apply_config(apply_values(run.config, constant))
    with pytest.raises(
        DivergedError, match=r"became nan at step \d+ \(learning rate 1e\+30\)"
    ) as diverged:
        for _ in range(5):
            run.trainer.train_step()
    assert run.trainer.step == 1  # the failed step does not count
    run.rollback(diverged.value)
    assert run.trainer.step == 0 and run.trainer.weights_finite()


def test_non_finite_weights_are_never_saved(corpus_file: Path, tmp_path: Path, tiny_config) -> None:
    """A save with NaN weights is refused and the previous model.ckpt stays byte for byte."""
    run = Run.start(tiny_config(corpus_file), tmp_path / "run")
    run.advance()
    run.save()
    before = run.run_dir.model_ckpt.read_bytes()
    with torch.no_grad():
        next(run.trainer.model.parameters())[0] = math.nan
    with pytest.raises(CheckpointError, match=r"not finite.*previous checkpoint is intact"):
        run.save()
    assert run.run_dir.model_ckpt.read_bytes() == before


def test_engine_pauses_goes_back_to_the_checkpoint_and_recovers(
    engines, config_file: Path, tmp_path: Path
) -> None:
    """A huge learning rate mid-run: an error with a hint, paused at the last checkpoint
    (step, history and weights), and after lowering the rate training goes on finite."""
    client = engines(tmp_path / "run", "--config", str(config_file), "--start")
    saved = client.wait_for(
        lambda e: isinstance(e, CheckpointEvent) and e.step is not None and e.step >= 20
    )
    client.send("set", values={"train.learning_rate": HUGE_LR})
    error = client.wait_for("error")
    assert "lower train.learning_rate" in error.message
    assert client.wait_for("state").state == "paused"
    hello = client.wait_for(HelloEvent)
    back_to = hello.step
    assert back_to >= saved.step and back_to % 10 == 0  # checkpoint_interval
    assert hello.history.steps[-1][0] == back_to
    assert all(math.isfinite(loss) for _, loss, _ in hello.history.steps)
    state = load_checkpoint(tmp_path / "run" / "model.ckpt")
    assert state["step"] == back_to and _finite(state)
    client.send("set", values={"train.learning_rate": 1e-3})
    client.wait_for("config_applied")
    client.send("resume")
    after = [client.wait_for("step") for _ in range(5)]
    assert after[0].step == back_to + 1
    assert all(math.isfinite(e.loss) for e in after)


def test_minigpt_train_exits_2_with_a_hint_and_a_finite_checkpoint(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Headless, a diverged run stops with exit code 2, the hint, and no traceback."""
    run_dir = tmp_path / "run"
    args = ["train", "--config", str(config_file), "--run-dir", str(run_dir)]
    code = main([*args, "--set", f"train.learning_rate={HUGE_LR:g}"])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "lower train.learning_rate" in err
    assert "--resume" in out + err
    assert "Traceback" not in err
    ckpt = run_dir / "model.ckpt"
    assert not ckpt.exists() or _finite(load_checkpoint(ckpt))


def test_a_rollback_before_any_checkpoint_keeps_the_trainers_cluster(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """Going back to a fresh model keeps the run on its torchrun job: the trainer still has
    its cluster and its gradient-averaging replica (a one-process gloo group here), and the
    fresh weights are those a new run starts with."""
    store = f"file://{tmp_path / 'store'}"
    dist.init_process_group("gloo", init_method=store, rank=0, world_size=1)
    try:
        cluster = Cluster(rank=0, world_size=1, local_rank=0, local_world_size=1)
        config = tiny_config(corpus_file, **{"train.warmup_iters": 0})
        fresh = Run.start(config, tmp_path / "fresh").trainer.model.state_dict()
        run = Run.start(config, tmp_path / "run", cluster=cluster)
        run.advance()
        run.trainer.apply_config(apply_values(run.config, {"train.learning_rate": HUGE_LR}))
        with pytest.raises(DivergedError) as diverged:
            for _ in range(5):
                run.trainer.train_step()
        alerts = run.rollback(diverged.value)
        assert run.trainer.cluster is cluster and run.trainer.replicas is not None
        assert run.trainer.step == 0
        weights = run.trainer.model.state_dict()
        assert all(torch.equal(weights[name], fresh[name]) for name in fresh)
        (alert,) = alerts
        assert isinstance(alert, AlertEvent) and alert.kind == "diverged"
        assert "lower train.learning_rate (" in alert.message
        run.close()
    finally:
        dist.destroy_process_group()


def test_minigpt_train_exits_1_when_a_step_fails(
    config_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A step that raises (torch out of memory, say) ends `minigpt train` with exit code 1,
    the error and the command that resumes, instead of a process waiting on a failed run."""

    def out_of_memory(self: Run) -> list:
        raise RuntimeError("CPU out of memory (a test's)")

    def waited_too_long(_signum: int, _frame: object) -> None:
        raise TimeoutError("minigpt train still waiting after its step failed")

    monkeypatch.setattr(Run, "advance", out_of_memory)
    previous = signal.signal(signal.SIGALRM, waited_too_long)
    signal.alarm(60)
    run_dir = tmp_path / "run"
    try:
        code = main(["train", "--config", str(config_file), "--run-dir", str(run_dir)])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "error: training failed: CPU out of memory (a test's)" in err
    assert f"resume with: minigpt train --run-dir {run_dir} --resume" in err
    assert "Traceback" not in err

"""The dashboard attached to rank 0 of a two-process torchrun job, as to any run."""

import subprocess
import sys
import time
from pathlib import Path

from minigpt.checkpoint import load_checkpoint
from tests.tui.pilot import pause_and_resume, until
from tui.app import make_app
from tui.link import EngineLink
from tui.screens import QuitScreen


async def test_dashboard_steers_a_torchrun_job(config_file: Path, tmp_path: Path) -> None:
    """Charts and counters fill, space pauses and resumes every rank, and quitting with
    stop-and-save ends the whole job with a checkpoint."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "minigpt", "train", "--config", str(config_file), "--run-dir", str(run_dir),
    ]  # fmt: skip
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "engine.sock").exists():
            assert job.poll() is None and time.monotonic() < deadline, "rank 0 never served"
            time.sleep(0.2)
        app = make_app(EngineLink(run_dir, attach_only=True))
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.state == "running" and app.stats.step > 30)
            assert app.model_facts["tokens_per_step"] == 2 * 4 * 16  # two ranks' batches
            assert len(app.loss_chart.train) > 0
            paused_at = await pause_and_resume(pilot, app, hold=1.0)
            await until(pilot, lambda: app.stats.step > paused_at + 5)
            await pilot.press("q")
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("s")
        assert job.wait(60) == 0
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert load_checkpoint(run_dir / "model.ckpt")["step"] > paused_at + 5

"""Record real engine sessions as the dashboard receives them, for replay in tests.

    python -m tests.tui.record     # rewrites tests/data/recorded/*.jsonl (about a minute)

Each file holds the JSON lines one client read from a real engine, hello first:
`run` (a short run to max_iters with evals, a save and a completion), `divergence`
(a learning rate so high that the loss goes NaN with an eval on every step: the
engine pauses at its checkpoint and says hello again), `restart` (a change of shape
applied with restart=true: a second hello from step 0) and `torchrun` (rank 0 of a
two-process job, trained to its end). tests/tui/test_replay.py plays them back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from minigpt.service.client import Client
from tests.tiny import tiny_overrides

OUT = Path(__file__).resolve().parents[1] / "data" / "recorded"
# The tests' tiny config (tests/tiny.py) as overrides, one thread whatever the tests run at.
TINY = tiny_overrides(**{"train.threads": 1})
Session = Callable[[Client, list[bytes]], None]


def corpus(folder: Path) -> Path:
    """A small, learnable text."""
    path = folder / "corpus.txt"
    path.write_text("".join(f"the cat sat on mat number {i % 7}.\n" for i in range(400)))
    return path


def flags(folder: Path, *settings: str) -> list[str]:
    """Engine flags for the tiny config on the corpus, with settings on top."""
    pairs = [*TINY, f"data.path={corpus(folder)}", *settings]
    return [flag for pair in pairs for flag in ("--set", pair)]


def read_until(client: Client, lines: list[bytes], test: Callable[[dict], bool]) -> None:
    """Keep every line read until one satisfies test (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = client.next_line(timeout=1.0)
        if line is not None:
            lines.append(line)
            if test(json.loads(line)):
                return
    raise TimeoutError("the engine never sent what the recording waits for")


def named(name: str, **fields: object) -> Callable[[dict], bool]:
    """A test for an event of this name with these field values."""
    return lambda event: (
        event.get("event") == name and all(event.get(k) == v for k, v in fields.items())
    )


def run_session(client: Client, lines: list[bytes]) -> None:
    """Train to max_iters with evals, save, and sample once."""
    client.send("start")
    read_until(client, lines, named("state", state="finished"))
    client.send("save")
    read_until(client, lines, named("checkpoint"))
    client.send("sample", prompt="the cat", max_new_tokens=20, seed=1)
    read_until(client, lines, named("sample_done"))


def divergence_session(client: Client, lines: list[bytes]) -> None:
    """Train with a learning rate that makes the loss NaN; wait for the pause and new hello."""
    client.send("start")
    read_until(client, lines, named("hello"))


def restart_session(client: Client, lines: list[bytes]) -> None:
    """Train a little, then change the model's width with restart=true."""
    client.send("start")
    read_until(client, lines, named("eval", step=20))
    client.send("set", values={"model.d_model": 16}, restart=True)
    read_until(client, lines, named("hello"))


def record(name: str, folder: Path, session: Session, *settings: str) -> None:
    """Start an engine, run the session, write what the client read."""
    client = Client.spawn(folder / name, flags(folder, *settings), timeout=60)
    lines = [json.dumps(client.hello.to_dict()).encode()]
    try:
        session(client, lines)
        client.send("shutdown", save=False)
    finally:
        client.close()
        if client.process is not None:
            client.process.wait(30)
    write(name, lines)


def record_torchrun(folder: Path) -> None:
    """Rank 0 of a two-process job, from its hello to the end of training."""
    run_dir = folder / "torchrun"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "minigpt", "train", "--run-dir", str(run_dir),
        *flags(folder, "train.max_iters=40", "train.eval_interval=20"),
    ]  # fmt: skip
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (run_dir / "engine.sock").exists():
            assert job.poll() is None, "the torchrun job exited before it served"
            time.sleep(0.1)
        client = Client.connect(run_dir)
        lines = [json.dumps(client.hello.to_dict()).encode()]
        read_until(client, lines, named("state", state="finished"))
        client.close()
        assert job.wait(60) == 0
    finally:
        if job.poll() is None:
            job.kill()
    write("torchrun", lines)


def write(name: str, lines: list[bytes]) -> None:
    """Save one recording."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    print(f"{name}: {len(lines)} events")


def main() -> None:
    """Record every session into tests/data/recorded/."""
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        record("run", folder, run_session, "train.max_iters=60", "train.eval_interval=20")
        record(
            "divergence",
            folder,
            divergence_session,
            "train.learning_rate=1e6",
            "train.warmup_iters=0",
            "train.eval_interval=1",
            "train.checkpoint_interval=1",
        )
        record("restart", folder, restart_session, "train.eval_interval=20")
        record_torchrun(folder)


if __name__ == "__main__":
    main()

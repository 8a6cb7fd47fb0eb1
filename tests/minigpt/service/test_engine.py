"""The engine process: its socket protocol, run-dir safety and signals, driven for real."""

import itertools
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from minigpt.cli.status import run_status
from minigpt.config import apply_values
from minigpt.errors import EngineError
from minigpt.events import (
    ConfigAppliedEvent,
    ErrorEvent,
    Event,
    InspectionEvent,
    LearnedEvent,
    SampleDoneEvent,
    SampleTokenEvent,
    StateEvent,
    StepEvent,
)
from minigpt.rundir.learned import LearnedRecords
from minigpt.service.client import Client
from minigpt.service.engine import Engine
from minigpt.service.run import Run

pytestmark = pytest.mark.trains


@pytest.fixture
def spawn(engines, config_file: Path) -> Callable[..., Client]:
    """Start detached engines on the tiny config; killed at the end."""
    return lambda run_dir, *extra: engines(run_dir, "--config", str(config_file), *extra)


def steps(client: Client, count: int) -> list[StepEvent]:
    """The next `count` step events."""
    found = []
    for _ in range(count):
        step = client.wait_for(StepEvent)
        assert isinstance(step, StepEvent), "wait_for(StepEvent) gives a StepEvent"
        found.append(step)
    return found


def in_state(state: str) -> Callable[[Event], bool]:
    """A wait_for test: the engine announces that it is now in this state."""
    return lambda e: isinstance(e, StateEvent) and e.state == state


def test_two_clients_see_the_same_events(spawn, tmp_path: Path) -> None:
    """A second client attached to the same run receives the same step events."""
    first = spawn(tmp_path / "run")
    second = Client.connect(tmp_path / "run")
    assert second.hello.state == "idle" and second.hello.step == 0
    first.send("start")
    seen_first = [(e.step, e.loss) for e in steps(first, 12)]
    seen_second = [(e.step, e.loss) for e in steps(second, 12)]
    assert seen_first == seen_second
    assert seen_first[0][0] == 1  # the first step after a start is always sent
    numbers = [step for step, _ in seen_first]
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(numbers))
    second.close()


def test_every_client_hears_what_the_model_learned_at_an_eval(
    spawn, tmp_path: Path, config_file: Path
) -> None:
    """With the learned views on, each eval is followed by a learned event to every client,
    and the record is in the run's learned/ folder."""
    config_file.write_text(
        config_file.read_text().replace("learned_views = false", "learned_views = true")
    )
    client = spawn(tmp_path / "run")
    other = Client.connect(tmp_path / "run")
    client.send("eval")
    heard = [c.wait_for(LearnedEvent) for c in (client, other)]
    assert all(isinstance(e, LearnedEvent) and e.step == 0 and e.probe_loss for e in heard)
    assert LearnedRecords(tmp_path / "run").steps() == [0]
    other.close()


def test_commands_act_at_step_boundaries(spawn, tmp_path: Path) -> None:
    """pause, resume, save, eval, stop and set each do their job between steps."""
    client = spawn(tmp_path / "run")
    client.send("start")
    assert client.wait_for("state").state == "running"
    seen: list[Event] = [*steps(client, 3)]
    client.send("pause")

    def paused(event: Event) -> bool:
        """Keep every event on the way to the pause; true at the pause."""
        seen.append(event)
        return in_state("paused")(event)

    paused_at = client.wait_for(paused)
    last_step = [e for e in seen if isinstance(e, StepEvent)][-1]  # throttled, yet the true last
    assert last_step.step is not None, "engines number their steps"
    assert not any(isinstance(e, StepEvent) for e in client.events(0.5))
    client.send("save")
    saved = client.wait_for("checkpoint")
    assert saved.path.endswith("model.ckpt")
    client.send("eval")
    assert client.wait_for("eval").step == saved.step
    client.send("set", values={"train.learning_rate": 1e-4, "train.warmup_iters": 0})
    applied = client.wait_for("config_applied")
    assert applied.changes["train.learning_rate"] == [0.001, 0.0001]
    client.send("resume")
    first_after = client.wait_for("step")
    assert first_after.step == saved.step + 1 == last_step.step + 1
    assert first_after.lr < 1e-4 + 1e-12
    assert paused_at.time <= first_after.time
    client.send("stop")
    stopped = client.wait_for(in_state("idle"))
    assert stopped.reason == "stopped"
    state = torch.load(tmp_path / "run" / "model.ckpt", weights_only=True)
    assert state["step"] >= first_after.step
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert any(json.loads(line)["event"] == "config_applied" for line in lines)


def test_every_pause_follows_the_true_last_step(spawn, tmp_path: Path) -> None:
    """Throttled or not, next to a checkpoint or not, clients see the step training stopped at."""
    client = spawn(tmp_path / "run")
    client.send("start")
    last_step = 0
    for _ in range(15):
        client.send("pause")
        while not in_state("paused")(
            event := client.wait_for(lambda e: isinstance(e, (StepEvent, StateEvent)))
        ):
            if isinstance(event, StepEvent):
                assert event.step is not None, "engines number their steps"
                last_step = event.step
        client.send("resume")
        resumed = client.wait_for("step")  # the first step after a start is always sent
        assert resumed.step == last_step + 1
        last_step = resumed.step
        time.sleep(0.02 * (last_step % 5))  # pause at varied points between checkpoints


def test_restart_keys_are_refused_until_restart_is_asked(spawn, tmp_path: Path) -> None:
    """Changing d_model is rejected with the key named; restart=true starts a fresh model."""
    client = spawn(tmp_path / "run")
    client.send("set", values={"model.d_model": 64})
    rejected = client.wait_for("config_rejected")
    assert rejected.needs_restart == ["model.d_model"]
    client.send("set", toml="[model]\nd_model = 64\n", restart=True)
    hello = client.wait_for("hello")
    assert hello.config["model"]["d_model"] == 64 and hello.step == 0


def test_sampling_streams_and_never_changes_training(spawn, tmp_path: Path) -> None:
    """A run that serves samples and inspections has exactly the losses of one that does not."""
    plain = spawn(tmp_path / "plain", "--set", "train.max_iters=40")
    plain.send("start")
    plain.wait_for(in_state("finished"))
    sampled = spawn(tmp_path / "sampled", "--set", "train.max_iters=40")
    sampled.send("sample", prompt="the cat", max_new_tokens=20, seed=0, id="early")
    sampled.send("start")
    pieces, done = [], None
    while True:
        event = sampled.wait_for(
            lambda e: e.name in ("step", "sample_token", "sample_done", "state")
        )
        if isinstance(event, StepEvent):
            sampled.send("sample", prompt="the", max_new_tokens=15)
            sampled.send("inspect", prompt="the cat", attention=True)
        elif isinstance(event, SampleTokenEvent) and event.id == "early":
            pieces.append(event.text)
        elif isinstance(event, SampleDoneEvent) and event.id == "early":
            done = event
        elif in_state("finished")(event):
            break
    assert done is not None and done.text == "".join(pieces) and done.tokens == 20
    assert done.step == 0 and done.prompt == "the cat"
    assert "".join(text for text, _ in done.spans) == done.text
    records = (tmp_path / "sampled" / "samples.jsonl").read_text().splitlines()
    assert json.loads(records[0])["id"] == "early" and len(records) > 1
    assert "".join(text for text, _ in json.loads(records[0])["spans"]) == done.text

    def losses(run: str) -> list[float]:
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [e["loss"] for e in map(json.loads, lines) if e["event"] == "step"]

    assert len(losses("plain")) == 40
    assert losses("sampled") == losses("plain")


def test_inspect_answers_its_asker_with_the_odds(spawn, tmp_path: Path) -> None:
    """inspect gets an inspection for its asker alone, at the engine's [sample] settings
    unless given; a prompt the vocabulary lacks gets an error naming it."""
    client = spawn(tmp_path / "run", "--set", "sample.temperature=0.5")
    other = Client.connect(tmp_path / "run")
    client.send("inspect", prompt="the cat", top_k=3, top=5, id="look")
    answer = client.wait_for(InspectionEvent)
    assert answer.id == "look" and answer.step == 0 and answer.prompt_tokens[-1] == "t"
    assert answer.temperature == 0.5 and answer.top_k == 3 and len(answer.candidates) == 5
    assert sum(c.prob_top_k > 0 for c in answer.candidates) == 3
    client.send("inspect", prompt="the dog", id="bad")
    error = client.wait_for(ErrorEvent)
    assert error.id == "bad" and "'d', 'g'" in error.message
    assert other.next_event(0.5) is None  # neither reached the other client
    other.close()


def test_each_reply_reaches_whom_its_class_declares(spawn, tmp_path: Path) -> None:
    """A change that needs a restart and a refused command are answered to their sender
    alone; an applied change reaches every client, each copy carrying the asker's id."""
    asker = spawn(tmp_path / "run")
    other = Client.connect(tmp_path / "run")
    asker.send("set", values={"model.d_model": 64}, id="big")
    assert asker.wait_for("config_rejected").id == "big"
    asker.send("pause", id="idle")
    assert asker.wait_for("error").id == "idle"
    asker.send("set", values={"train.learning_rate": 1e-4}, id="mine")
    mine = asker.wait_for("config_applied")
    theirs = other.wait_for(lambda e: e.name in ("config_rejected", "error", "config_applied"))
    assert isinstance(theirs, ConfigAppliedEvent) and theirs == mine and theirs.id == "mine"
    other.close()


def test_each_eval_samples_the_prompt_at_a_fixed_seed(spawn, tmp_path: Path) -> None:
    """With sample.at_eval, evals queue the [sample] prompt (one at a time); hellos replay them."""
    settings = ["--set", "sample.at_eval=true", "--set", "sample.max_new_tokens=8"]
    settings += ["--set", "sample.prompt=the cat"]
    first = spawn(tmp_path / "a", "--set", "train.max_iters=50", *settings)
    first.send("start")
    first.wait_for(in_state("finished"))
    done = first.wait_for(lambda e: isinstance(e, SampleDoneEvent) and e.id == "eval-50")
    assert done.at_eval and done.prompt == "the cat" and done.tokens == 8
    assert done.settings["seed"] == 1337  # train.seed
    records = [json.loads(line) for line in (tmp_path / "a" / "samples.jsonl").open()]
    assert records[0]["id"] == "eval-0" and records[0]["step"] == 0  # the weights evaluated
    assert all(r["at_eval"] for r in records)
    assert len(records) <= 3  # evals at 0, 25, 50; ones that found a sample waiting were skipped
    again = Client.connect(tmp_path / "a")
    assert [sample.to_dict() for sample in again.hello.history.samples] == records
    again.close()
    second = spawn(tmp_path / "b", "--set", "train.max_iters=0", *settings)
    second.send("eval")
    repeat = second.wait_for(SampleDoneEvent)
    assert repeat.id == "eval-0" and repeat.text == records[0]["text"]  # same seed, text
    second.send("set", values={"sample.prompt": "The cat"})  # no "T" in the char vocabulary
    second.send("eval")
    warning = second.wait_for("log")
    assert "no sample at eval" in warning.message and "'T'" in warning.message


def test_asked_for_samples_go_before_those_at_evals(spawn, tmp_path: Path) -> None:
    """A prompt sent while a long sample at eval streams is answered first."""
    client = spawn(
        tmp_path / "run",
        *("--set", "sample.at_eval=true", "--set", "sample.prompt=the cat"),
        *("--set", "sample.max_new_tokens=5000"),
    )
    client.send("eval")
    client.wait_for("eval")
    client.send("sample", prompt="the", max_new_tokens=5, id="mine")
    assert client.wait_for("sample_done").id == "mine"


def test_cancel_stops_only_the_senders_completions(spawn, tmp_path: Path) -> None:
    """cancel_sample ends the sender's own completion early, marked cancelled; another
    client's is refused by name and untouched by a cancel without id; a live id is unique."""
    a = spawn(tmp_path / "run")
    b = Client.connect(tmp_path / "run")
    b.send("sample", prompt="the", max_new_tokens=100000, id="b-long")
    a.wait_for(lambda e: isinstance(e, SampleTokenEvent) and e.id == "b-long")  # all see it
    a.send("sample", prompt="the", max_new_tokens=5, id="b-long")
    assert "sample b-long is already streaming" in a.wait_for("error").message
    a.send("cancel_sample", sample_id="b-long")
    refused = a.wait_for("error").message
    assert refused == "cancel_sample: sample b-long belongs to another client"
    a.send("cancel_sample")
    assert a.wait_for("error").message == "cancel_sample: no sample of yours is streaming"
    a.send("sample", prompt="the", max_new_tokens=100000, id="a-long")
    a.send("cancel_sample")  # a's newest: a-long, queued behind b-long
    done = b.wait_for("sample_done")
    assert isinstance(done, SampleDoneEvent)
    assert done.id == "a-long" and done.cancelled and done.tokens == 0
    b.send("cancel_sample", sample_id="b-long")
    done = a.wait_for(lambda e: isinstance(e, SampleDoneEvent) and e.id == "b-long")
    assert done.id == "b-long" and done.cancelled and 0 < done.tokens < 100000
    b.close()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json\n", "malformed JSON"),
        (b'{"cmd": "fly"}\n', "unknown command 'fly'"),
        (b'{"cmd": "sample", "prompt": 5, "id": "x"}\n', "prompt must be str"),
        (b'{"cmd": "sample", "top_p": 2.0}\n', "sample.top_p"),
        (b'{"cmd": "set", "toml": "[train\\nlr = "}\n', "line 1"),
        (b'{"cmd": "set", "values": {"train.max_itres": 5}}\n', "did you mean train.max_iters"),
        (b'{"cmd": "sample", "prompt": "the \\u4f60"}\n', "not in this model's vocabulary"),
        (b'{"cmd": "pause"}\n', "not possible while idle"),
    ],
)
def test_bad_input_gets_an_error_and_harms_nothing(
    spawn, tmp_path: Path, raw: bytes, message: str
) -> None:
    """Each bad command gets an error event for its sender; the engine carries on."""
    client = spawn(tmp_path / "run")
    client.send_raw(raw)
    error = client.wait_for("error")
    assert message in error.message
    assert not error.fatal
    client.send("start")
    last = steps(client, 2)[-1].step
    assert last is not None and last >= 2


def test_huge_prompt_is_cropped_and_training_goes_on(spawn, tmp_path: Path) -> None:
    """A 100k-character prompt is answered from its last context_length tokens."""
    client = spawn(tmp_path / "run", "--start")
    client.send("sample", prompt="the cat sat " * 9000, max_new_tokens=5)
    done = client.wait_for("sample_done")
    assert done.prompt_tokens == len("the cat sat ") * 9000
    assert done.prompt_cropped == done.prompt_tokens - 16
    before = client.wait_for("step").step
    assert client.wait_for("step").step > before


def test_client_vanishing_mid_line_is_dropped_cleanly(spawn, tmp_path: Path) -> None:
    """A client that disconnects halfway through a command leaves the engine serving."""
    client = spawn(tmp_path / "run", "--start")
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(tmp_path / "run" / "engine.sock"))
    raw.sendall(b'{"cmd": "pau')
    raw.close()
    steps(client, 3)
    again = Client.connect(tmp_path / "run")
    assert again.hello.state == "running"
    again.close()


def test_second_engine_on_a_run_is_refused(spawn, tmp_path: Path, config_file: Path) -> None:
    """The lock makes a second engine exit 2, naming the live engine's pid."""
    client = spawn(tmp_path / "run")
    result = subprocess.run(
        [sys.executable, "-m", "minigpt", "engine", "--run-dir", str(tmp_path / "run"),
         "--config", str(config_file)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"in use by engine pid {client.process.pid}" in result.stderr
    assert Client.connect(tmp_path / "run").hello.pid == client.process.pid


def test_socket_and_run_dir_are_private(spawn, tmp_path: Path) -> None:
    """The run dir is 0700 and the socket 0600."""
    spawn(tmp_path / "run")
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "run" / "engine.sock").stat().st_mode) == 0o600


def test_stale_socket_is_replaced(spawn, tmp_path: Path) -> None:
    """A socket file left by a dead engine does not stop a new one."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(run_dir / "engine.sock"))
    dead.close()
    with pytest.raises(EngineError, match="no engine"):
        Client.connect(run_dir)
    assert spawn(run_dir).hello.state == "idle"


def test_long_run_dir_path_works(spawn, tmp_path: Path) -> None:
    """A run dir too deep for a unix socket path still serves, through a symlink."""
    run_dir = tmp_path / ("deep-" * 20) / "run"
    assert len(str(run_dir / "engine.sock")) > 108
    client = spawn(run_dir, "--start")
    first = steps(client, 1)[0].step
    assert first is not None and first >= 1
    assert (run_dir / "engine.sock").is_symlink()
    assert Client.connect(run_dir).hello.state == "running"


def test_sigterm_saves_a_loadable_checkpoint(spawn, tmp_path: Path) -> None:
    """SIGTERM makes the engine save model.ckpt at its last step and exit."""
    client = spawn(tmp_path / "run", "--start")
    last = steps(client, 13)[-1].step
    assert last is not None, "engines number their steps"
    client.process.send_signal(signal.SIGTERM)
    assert client.process.wait(30) == 128 + signal.SIGTERM
    state = torch.load(tmp_path / "run" / "model.ckpt", weights_only=True)
    assert state["step"] >= last
    assert not (tmp_path / "run" / "engine.sock").exists()


def test_sighup_does_not_stop_a_detached_engine(spawn, tmp_path: Path) -> None:
    """A hang-up (a dropped SSH session) leaves the detached engine training."""
    client = spawn(tmp_path / "run", "--start")
    steps(client, 1)
    os.kill(client.process.pid, signal.SIGHUP)
    # Only a live engine, past the signal's delivery, can greet a new client.
    Client.connect(tmp_path / "run").close()
    assert client.process.poll() is None
    steps(client, 2)


def test_kill_9_then_resume_continues_from_the_last_checkpoint(spawn, tmp_path: Path) -> None:
    """After kill -9, --resume starts at the last checkpoint with the history up to it."""
    client = spawn(tmp_path / "run", "--start")
    client.wait_for(lambda e: isinstance(e, StepEvent) and e.step is not None and e.step >= 24)
    client.process.kill()
    client.process.wait()
    assert "alive" not in run_status(tmp_path / "run")
    saved = torch.load(tmp_path / "run" / "model.ckpt", weights_only=True)["step"]
    assert saved >= 20 and saved % 10 == 0  # checkpoint_interval
    again = spawn(tmp_path / "run", "--resume")
    assert again.hello.step == saved
    assert again.hello.history.steps[-1][0] == saved
    again.send("start")
    assert again.wait_for("step").step == saved + 1


def test_engine_stops_when_its_run_dir_is_deleted(spawn, tmp_path: Path) -> None:
    """Deleting a live run's folder stops its engine (which had nowhere left to save)."""
    client = spawn(tmp_path / "run", "--start")
    steps(client, 2)
    deadline = time.monotonic() + 10
    while (tmp_path / "run").exists():  # the engine may write a file in it mid-removal
        assert time.monotonic() < deadline, "the run directory could not be removed"
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
    stopped = client.wait_for(lambda e: isinstance(e, ErrorEvent) and e.fatal)
    assert "was deleted or replaced" in stopped.message
    assert client.process.wait(30) == 1
    assert not (tmp_path / "run").exists()


def test_idle_engine_saves_and_exits(spawn, tmp_path: Path) -> None:
    """With nothing to do and nobody attached, the engine saves and exits by itself."""
    client = spawn(tmp_path / "run", "--idle-timeout", "1")
    client.send("start")
    steps(client, 3)
    client.send("pause")
    client.wait_for("state")
    client.close()
    assert client.process.wait(30) == 0
    assert torch.load(tmp_path / "run" / "model.ckpt", weights_only=True)["step"] >= 3


def test_status_lists_live_and_dead_runs(spawn, tmp_path: Path) -> None:
    """status shows a live run's state and step, and a stopped run's val loss."""
    client = spawn(tmp_path / "live", "--start")
    client.wait_for("eval")
    line = run_status(tmp_path / "live")
    assert f"alive (pid {client.process.pid})" in line and "running" in line
    client.send("shutdown")
    client.process.wait(30)
    line = run_status(tmp_path / "live")
    assert "not running" in line and "stopped" in line and "val " in line


def test_a_restart_drops_the_old_runs_held_back_step(
    corpus_file: Path, tmp_path: Path, tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step event held back by the rate limit belongs to the run it came from: after a
    restart's new hello, the next state change sends no step of the old run."""
    run = Run.start(tiny_config(corpus_file), tmp_path / "run")
    engine = Engine(run)
    sent: list[dict] = []
    monkeypatch.setattr(engine.server, "broadcast", sent.append)
    engine.unsent_step = StepEvent(17, 2.5, 1e-3, None, None, None).to_dict()  # held back
    engine._restart(apply_values(run.config, {"model.d_model": 64}))
    engine._set_state("running", "start")
    after_hello = [m["event"] for m in sent[[m["event"] for m in sent].index("hello") :]]
    assert after_hello == ["hello", "state"]
    engine.run.close()


def test_the_sample_at_the_first_eval_is_of_the_weights_it_measured(
    corpus_file: Path, tmp_path: Path, tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The eval before any training queues its sample from the untrained weights, though
    the engine hears of the eval only once the run's advance() has returned."""
    config = tiny_config(corpus_file, **{"sample.at_eval": True, "train.warmup_iters": 0})
    untrained = Run.start(config, tmp_path / "fresh")
    fresh = untrained.trainer.model.state_dict()
    run = Run.start(config, tmp_path / "run")
    engine = Engine(run)
    monkeypatch.setattr(engine.server, "broadcast", lambda message: None)
    queued: list[tuple[str, int, dict[str, torch.Tensor]]] = []
    add = engine.samples.add

    def spy(job_id: str, owner, model, tokenizer, config, seed, step: int) -> None:
        weights = {name: value.clone() for name, value in model.state_dict().items()}
        queued.append((job_id, step, weights))
        add(job_id, owner, model, tokenizer, config, seed, step)

    monkeypatch.setattr(engine.samples, "add", spy)
    while run.trainer.step < 2:
        engine._train_step()
    ((job_id, step, weights),) = queued
    assert (job_id, step) == ("eval-0", 0)
    assert all(torch.equal(weights[name], fresh[name]) for name in fresh)
    trained = run.trainer.model.state_dict()
    assert not all(torch.equal(trained[name], fresh[name]) for name in fresh)
    untrained.close()
    run.close()

"""Every reader of a run directory takes what it finds: odd lines in its history never cost
the run. A real tiny run's metrics.jsonl and samples.jsonl get generated lines appended
(valid JSON of every shape, NaN, huge numbers, nesting, bytes that are not JSON or not
UTF-8); status, resume, sampling and the engine's hello must all still work, and the
resumed run must train exactly as the untouched one does."""

import contextlib
import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigpt.cli.main import main
from minigpt.cli.status import run_status
from minigpt.events import EVENTS, HelloEvent, SampleDoneEvent, StepEvent, decode
from minigpt.rundir.layout import RunDir
from minigpt.sampling import Completion
from minigpt.service.engine import Engine
from minigpt.service.run import Run
from tests.minigpt.conftest import TRAINS
from tests.tiny import tiny_config

pytestmark = pytest.mark.trains

STEPS, MORE = 20, 4  # the run is saved at STEPS; resuming trains MORE steps
FIELDS = sorted({name for cls in EVENTS.values() for name in cls.__dataclass_fields__})
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([math.nan, math.inf, -math.inf, 10**400, -1, 0])
    | st.floats()
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
EVENT_LINE = st.builds(
    lambda name, fields: json.dumps({"event": name, **fields}).encode(),
    st.sampled_from([*EVENTS, "other"]),
    st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6),
)
ODD_LINE = st.one_of(
    EVENT_LINE,
    VALUES.map(lambda value: json.dumps(value).encode()),  # JSON that is no object, or any
    st.binary(max_size=40).map(lambda raw: raw.replace(b"\n", b"")),  # not JSON, not UTF-8
)


def resumed_losses(run_dir: Path) -> list[float]:
    """The losses of MORE steps after resuming run_dir."""
    run = Run.resume(None, run_dir)
    try:
        losses: list[float] = []
        while len(losses) < MORE:
            for event in run.advance():
                if isinstance(event, StepEvent):
                    assert event.loss is not None  # a step that trained has its loss
                    losses.append(event.loss)
        return losses
    finally:
        run.close()


def save_a_run(folder: Path) -> Path:
    """A real run in folder/run, saved at step STEPS, with one completion in samples.jsonl."""
    corpus = folder / "corpus.txt"
    corpus.write_text("".join(f"the cat sat on mat number {i % 7}.\n" for i in range(300)))
    values = {"train.max_iters": 100, "train.eval_interval": 10, "sample.prompt": "the cat"}
    config = tiny_config(corpus, **TRAINS | values)
    run = Run.start(config, folder / "run")
    while run.trainer.step < STEPS:
        run.advance()
    run.save()
    trainer = run.trainer
    completion = Completion(trainer.model, trainer.corpus.tokenizer, config.sample, seed=1)
    text = "".join(completion)
    run.run_dir.record_sample(
        SampleDoneEvent("a-1", config.sample.prompt, text, completion.tokens, 50.0, STEPS, 1, 0, {})
    )
    run.close()
    return folder / "run"


def append_lines(run_dir: Path, metrics: list[bytes], samples: list[bytes]) -> None:
    """Append lines as they are to the run's metrics.jsonl and samples.jsonl."""
    paths = RunDir(run_dir)
    for path, lines in ((paths.metrics, metrics), (paths.samples, samples)):
        with open(path, "ab") as f:
            f.write(b"".join(line + b"\n" for line in lines))


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> tuple[Path, list[float]]:
    """A saved real run, and the losses it trains on resuming untouched."""
    folder = tmp_path_factory.mktemp("odd")
    run_dir = save_a_run(folder)
    reference = folder / "reference"
    shutil.copytree(run_dir, reference)
    return run_dir, resumed_losses(reference)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(metrics=st.lists(ODD_LINE, max_size=12), samples=st.lists(ODD_LINE, max_size=6))
def test_odd_lines_never_cost_the_run(saved_run, capsys, metrics, samples) -> None:
    """status, the hello, sampling and resume all work, and the resumed losses are the
    untouched run's."""
    original, reference_losses = saved_run
    with tempfile.TemporaryDirectory() as temp:
        run_dir = Path(temp) / "run"
        shutil.copytree(original, run_dir)
        append_lines(run_dir, metrics, samples)
        assert run_status(run_dir).startswith(f"{run_dir}  not running")
        assert main(["status", "--run-dir", str(run_dir)]) == 0
        assert main(["sample", "--run-dir", str(run_dir), "--max-new-tokens", "5"]) == 0
        run = Run.resume(None, run_dir)
        try:
            hello = Engine(run).hello()
        finally:
            with contextlib.suppress(Exception):
                run.close()
        wire = json.loads(json.dumps(hello.to_dict(), allow_nan=False))
        assert decode(wire) == hello and hello.step == STEPS
        assert [e.step for e in hello.history.evals][:3] == [0, 10, 20]  # then any appended
        assert hello.history.samples[0].id == "a-1"
        assert resumed_losses(run_dir) == reference_losses
    capsys.readouterr()


ODD = [b'{"event": "step", "loss": 2.5}', b"\xff\xfe not json", b'{"event":']


def with_odd_lines(saved_run, tmp_path: Path, at: int | None) -> tuple[Path, list[bytes]]:
    """A copy of the saved run with the ODD lines put before line `at` (None: at the end)
    of its metrics.jsonl; its folder and its lines before that."""
    run_dir = tmp_path / "run"
    shutil.copytree(saved_run[0], run_dir)
    metrics = RunDir(run_dir).metrics
    lines = metrics.read_bytes().splitlines()
    at = len(lines) if at is None else at - 1
    metrics.write_bytes(b"".join(line + b"\n" for line in [*lines[:at], *ODD, *lines[at:]]))
    return run_dir, lines


def resumed_hello(run_dir: Path) -> HelloEvent:
    """The hello of an engine on the run once resumed."""
    run = Run.resume(None, run_dir)
    try:
        return Engine(run).hello()
    finally:
        run.close()


def test_status_and_hello_count_odd_lines_within_the_history(saved_run, tmp_path) -> None:
    """A step without its step number and two garbled lines amid the history: status and the
    hello count all three, naming the first one's line, and resuming keeps them."""
    run_dir, lines = with_odd_lines(saved_run, tmp_path, at=6)
    assert "(3 unreadable lines skipped)" in run_status(run_dir)
    metrics = RunDir(run_dir).metrics
    note = f"{metrics}: 3 unreadable lines skipped (the first is line 6)"
    assert resumed_hello(run_dir).history.skipped == [note]
    assert len(metrics.read_bytes().splitlines()) == len(lines) + 3


def test_resuming_cuts_odd_lines_after_the_checkpoint(saved_run, tmp_path) -> None:
    """The same lines appended after the checkpoint's step: status counts them; resuming cuts
    them with any other line after that step, so the hello has none to skip."""
    run_dir, lines = with_odd_lines(saved_run, tmp_path, at=None)
    assert "(3 unreadable lines skipped)" in run_status(run_dir)
    assert resumed_hello(run_dir).history.skipped == []
    assert RunDir(run_dir).metrics.read_bytes().splitlines() == lines


@pytest.mark.parametrize(
    ("version", "says"),
    [
        (2, "checkpoint format 2, written by a newer minigpt; this minigpt reads format 1"),
        (0, "checkpoint format 0, written by an older minigpt; this minigpt reads format 1"),
        ("1.0", "checkpoint format '1.0', which is no minigpt format; this minigpt reads format 1"),
    ],
)
def test_a_checkpoint_of_another_format_names_both_versions(
    saved_run, tmp_path, capsys, version, says
) -> None:
    """Sampling and resuming refuse it in one line naming both formats, without a traceback."""
    run_dir = tmp_path / "run"
    shutil.copytree(saved_run[0], run_dir)
    checkpoint = RunDir(run_dir).model_ckpt
    state = torch.load(checkpoint, weights_only=True)
    torch.save(state | {"version": version}, checkpoint)
    for command in (["sample"], ["train", "--resume"]):
        assert main([*command, "--run-dir", str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert says in err and err.startswith("minigpt: error:") and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1

"""Training, evaluation, checkpoints and resume."""

import functools
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from minigpt import config as config_module
from minigpt import token_cache
from minigpt.checkpoint import PREDATED, saved_config
from minigpt.cli.main import main
from minigpt.config import ModelConfig, apply_values, parse_config
from minigpt.config_text import toml_value
from minigpt.errors import CheckpointError
from minigpt.events import EvalEvent, LogEvent, StepEvent
from minigpt.service.run import Run
from minigpt.tokenizer import Cl100kTokenizer, fit_tokenizer, load_cl100k
from minigpt.train import lr_at, wants_compile
from tests.minigpt.runs import train_to_end

pytestmark = pytest.mark.trains

# Defaults [model]'s switches might take one day, none of which changes the weights' shapes.
NEW_DEFAULTS: dict[str, Any] = {"activation": "relu2", "qk_norm": True, "logit_softcap": 1.0}


def test_loss_falls_on_a_tiny_corpus(corpus_file: Path, tmp_path: Path, tiny_config) -> None:
    """A few dozen steps take val loss well below its value at step 0."""
    config = tiny_config(corpus_file, **{"train.max_iters": 60, "train.eval_interval": 60})
    evals = [
        e for e in train_to_end(Run.start(config, tmp_path / "run")) if isinstance(e, EvalEvent)
    ]
    assert [e.step for e in evals] == [0, 60]
    first, last = evals[0].val_loss, evals[1].val_loss
    assert first is not None and last is not None, "a run with a val split has a val loss"
    assert last < 0.5 * first


def test_schedule_warms_up_then_decays_to_min_lr(corpus_file: Path, tiny_config) -> None:
    """lr rises linearly over warmup_iters, peaks, then follows a cosine down to min_lr."""
    train = tiny_config(corpus_file, **{"train.warmup_iters": 10, "train.max_iters": 100}).train
    lrs = [lr_at(step, train) for step in range(101)]
    assert lrs[0] < lrs[5] < lrs[9] < lrs[10] == pytest.approx(train.learning_rate, rel=0.01)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))
    assert lrs[100] == pytest.approx(train.min_lr)


def test_run_dir_holds_config_metrics_and_loadable_checkpoints(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """A run writes config.toml, event-shaped metrics.jsonl and weights_only-loadable ckpts."""
    run_dir = tmp_path / "run"
    train_to_end(Run.start(tiny_config(corpus_file), run_dir))
    assert (run_dir / "config.toml").read_text().count("[model]") == 1
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 41))
    assert set(steps[0]) >= {"time", "step", "loss", "lr", "tokens_per_sec", "ms_per_step"}
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [0, 20, 40]
    assert {"train_loss", "val_loss", "best_val_loss"} <= set(evals[0])
    for name in ("model.ckpt", "best.ckpt"):
        state = torch.load(run_dir / name, weights_only=True)
        assert state["step"] in (20, 40)
        assert state["config"]["model"]["d_model"] == 32
    assert (run_dir.stat().st_mode & 0o777) == 0o700


# Every switch of [model] on: a model unlike the lesson's in each way it can be.
SWITCHED: dict[str, object] = {
    "model.activation": "relu2",
    "model.position": "rotary",
    "model.qk_norm": True,
    "model.logit_softcap": 15.0,
    "model.residual_scalars": True,
}


@pytest.mark.parametrize(
    ("optimizer", "switches"),
    [("adamw", {}), ("muon", {}), ("muon", SWITCHED)],
    ids=["adamw", "muon", "muon-switched"],
)
def test_resume_reproduces_the_uninterrupted_losses(
    optimizer: str, switches: dict[str, object], corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """A run stopped at step 20 and resumed gives the uninterrupted run's losses after it,
    step and eval, with either optimizer (each keeps its state in the checkpoint, as the
    weight average the evals use does), and with every switch of [model] on."""
    pinned: dict[str, object] = {
        "train.min_lr": 3e-3,
        "train.warmup_iters": 0,
        "train.max_iters": 40,
    }
    pinned |= {"train.optimizer": optimizer, **switches}
    whole = train_to_end(Run.start(tiny_config(corpus_file, **pinned), tmp_path / "whole"))
    first = tiny_config(corpus_file, **(pinned | {"train.max_iters": 20}))
    train_to_end(Run.start(first, tmp_path / "split"))
    resumed = Run.resume(apply_values(first, {"train.max_iters": 40}), tmp_path / "split")
    rest = train_to_end(resumed)
    expected = [
        e.loss for e in whole if isinstance(e, StepEvent) and e.step is not None and e.step > 20
    ]
    got = [e.loss for e in rest if isinstance(e, StepEvent)]
    assert len(got) == 20
    assert got == pytest.approx(expected, rel=1e-5)
    want, have = (
        [e for e in run if isinstance(e, EvalEvent) and e.step is not None and e.step > 20]
        for run in (whole, rest)
    )
    assert want and [e.step for e in have] == [e.step for e in want]
    assert [e.val_loss for e in have] == pytest.approx([e.val_loss for e in want], rel=1e-5)
    metrics = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in metrics if '"event": "step"' in line]
    assert steps == list(range(1, 41))


def test_resume_drops_metrics_past_the_checkpoint(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """Events logged after the last checkpoint (lost work) and a torn line are dropped."""
    run_dir = tmp_path / "run"
    train_to_end(Run.start(tiny_config(corpus_file, **{"train.max_iters": 20}), run_dir))
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"event": "step", "step": 21, "loss": 1.0}) + "\n")
        f.write('{"event": "step", "st')
    run = Run.resume(None, run_dir)
    run.close()
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line).get("step", 0) <= 20 for line in lines)


def test_fresh_start_refuses_to_overwrite_a_run(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """Starting over an existing run dir is refused, and its checkpoint kept."""
    config = tiny_config(corpus_file, **{"train.max_iters": 20})
    train_to_end(Run.start(config, tmp_path / "run"))
    before = (tmp_path / "run" / "model.ckpt").read_bytes()
    with pytest.raises(CheckpointError, match="--resume"):
        Run.start(config, tmp_path / "run")
    assert (tmp_path / "run" / "model.ckpt").read_bytes() == before


def test_resume_refuses_a_changed_model_shape(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """Resuming with a different d_model names the key instead of failing inside torch."""
    config = tiny_config(corpus_file, **{"train.max_iters": 20})
    train_to_end(Run.start(config, tmp_path / "run"))
    with pytest.raises(CheckpointError, match=r"model\.d_model"):
        Run.resume(apply_values(config, {"model.d_model": 64}), tmp_path / "run")


def test_damaged_checkpoint_is_reported(corpus_file: Path, tmp_path: Path, tiny_config) -> None:
    """A truncated model.ckpt gives a CheckpointError naming the file."""
    train_to_end(Run.start(tiny_config(corpus_file, **{"train.max_iters": 20}), tmp_path / "run"))
    ckpt = tmp_path / "run" / "model.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"model\.ckpt"):
        Run.resume(None, tmp_path / "run")


def test_grad_accumulation_matches_a_bigger_batch_in_scale(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """With accumulation the reported loss stays a per-token mean, not a sum."""
    config = tiny_config(corpus_file, **{"train.grad_accum_steps": 4, "train.max_iters": 1})
    events = train_to_end(Run.start(config, tmp_path / "run"))
    step, first = next(e for e in events if isinstance(e, StepEvent)), events[0]
    assert isinstance(first, EvalEvent), "a run opens with its eval at step 0"
    assert step.loss is not None and first.train_loss is not None, "both measure a loss"
    assert abs(step.loss - first.train_loss) < 0.5


@pytest.mark.parametrize(
    ("setting", "device", "wanted"),
    [
        ("auto", "cuda", True),
        ("auto", "cpu", False),
        ("auto", "mps", False),
        ("true", "cpu", True),
        ("false", "cuda", False),
    ],
)
def test_compile_auto_means_cuda_only(setting: str, device: str, wanted: bool) -> None:
    """train.compile = "auto" compiles on CUDA, where it pays, and nowhere else."""
    assert wants_compile(setting, torch.device(device)) is wanted


def test_compile_failure_falls_back_to_eager(
    corpus_file: Path, tmp_path: Path, tiny_config, monkeypatch
) -> None:
    """A compiler that fails is reported once, among the run's events though it failed while
    the trainer was built, and training goes on uncompiled."""

    def broken(*args, **kwargs):
        raise RuntimeError("no C compiler found")

    monkeypatch.setattr(torch, "compile", broken)
    config = tiny_config(corpus_file, **{"train.compile": "true", "train.max_iters": 3})
    events = train_to_end(Run.start(config, tmp_path / "run"))
    logs = [e for e in events if isinstance(e, LogEvent)]
    assert [log.level for log in logs] == ["warning"] and "no C compiler" in logs[0].message
    assert [e.step for e in events if isinstance(e, StepEvent)] == [1, 2, 3]


def test_a_run_from_before_the_restricted_vocabulary_resumes_exactly(
    tmp_path: Path, tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compact run fitted the older way (every id the corpus used, the spelled rule, no
    rule in its checkpoint) resumes on its own vocabulary and gives the losses it would
    have given uninterrupted, and samples with it."""
    corpus = tmp_path / "corpus.txt"
    rare = "Photosynthesis, chromodynamics and a xylophone, once each.\n"
    corpus.write_text("the cat sat on the mat.\n" * 300 + rare * 2, encoding="utf-8")

    def older_fit(text, compact_vocab, encode, cache_dir):
        """How a compact vocabulary was fitted before: the ids the full BPE used."""
        bpe = Cl100kTokenizer(np.unique(encode(load_cl100k())), rule="spelled")
        return bpe, bpe.ids_from_encoding(encode(bpe.encoding))

    pinned = {"data.tokenizer": "cl100k_base", "data.compact_vocab": True}
    pinned |= {"train.warmup_iters": 0, "train.min_lr": 3e-3, "train.max_iters": 40}
    first = tiny_config(corpus, **(pinned | {"train.max_iters": 20}))
    with monkeypatch.context() as older:
        older.setattr(token_cache, "_fit_cl100k", older_fit)
        whole = train_to_end(Run.start(tiny_config(corpus, **pinned), tmp_path / "whole"))
        train_to_end(Run.start(first, tmp_path / "split"))
    ckpt = tmp_path / "split" / "model.ckpt"
    state = torch.load(ckpt, weights_only=True)
    assert state["tokenizer"].pop("rule") == "spelled"
    torch.save(state, ckpt)
    assert (
        len(state["tokenizer"]["keep_ids"])
        > fit_tokenizer("cl100k_base", corpus.read_text(encoding="utf-8"), compact_vocab=True)[
            0
        ].vocab_size
    ), "the older vocabulary differs from what a new run fits"
    resumed = Run.resume(apply_values(first, {"train.max_iters": 40}), tmp_path / "split")
    tokenizer = resumed.trainer.corpus.tokenizer
    assert isinstance(tokenizer, Cl100kTokenizer) and tokenizer.rule == "spelled"
    got = [e.loss for e in train_to_end(resumed) if isinstance(e, StepEvent)]
    expected = [e.loss for e in whole if isinstance(e, StepEvent) and (e.step or 0) > 20]
    assert len(got) == 20 and got == pytest.approx(expected, rel=1e-5)
    assert main(["sample", "--run-dir", str(tmp_path / "split"), "--max-new-tokens", "5"]) == 0


def test_a_checkpoint_from_before_the_model_switches_loads_as_the_lessons_model(
    corpus_file: Path,
    tmp_path: Path,
    tiny_config,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """A model.ckpt whose config names none of [model]'s switches resumes as the lesson's
    model and samples through `minigpt sample` the text it sampled before, even after the
    switches' defaults change: each missing switch takes the value PREDATED says it had, not
    today's default, and a switch the checkpoint names keeps its value."""
    lessons = {f"model.{key}": value for key, value in PREDATED["model"].items()}
    config = tiny_config(corpus_file, **{"train.max_iters": 20}, **lessons)
    train_to_end(Run.start(config, tmp_path / "run"))
    run_dir, ckpt = tmp_path / "run", tmp_path / "run" / "model.ckpt"

    def sample(*flags: str) -> str:
        """What `minigpt sample` prints for 40 tokens of the run at seed 3, with flags."""
        args = ["sample", "--run-dir", str(run_dir), "--prompt", "the cat", "--seed", "3"]
        capsys.readouterr()  # what the run printed before
        assert main([*args, "--max-new-tokens", "40", "--temperature", "1", *flags]) == 0
        return capsys.readouterr().out

    before = sample()
    state = torch.load(ckpt, weights_only=True)
    for key in PREDATED["model"]:
        del state["config"]["model"][key]
    torch.save(state, ckpt)
    # New defaults that keep the weights' shapes (a config's sections are made by _SECTIONS).
    changed = functools.partial(ModelConfig, **NEW_DEFAULTS)
    monkeypatch.setitem(config_module._SECTIONS, "model", changed)
    assert parse_config("").model == ModelConfig(**NEW_DEFAULTS)
    resumed = Run.resume(None, run_dir)
    try:
        assert resumed.config.model == config.model and resumed.trainer.step == 20
    finally:
        resumed.close()
    assert sample() == before
    assert sample(*(f"--set=model.{k}={toml_value(v)}" for k, v in NEW_DEFAULTS.items())) != before
    monkeypatch.setitem(PREDATED, "model", PREDATED["model"] | {"activation": "gelu"})
    assert saved_config(state, ckpt).model.activation == "gelu"
    state["config"]["model"]["activation"] = "relu2"
    assert saved_config(state, ckpt).model.activation == "relu2"


def test_a_checkpoint_from_before_the_optimizer_choice_resumes_with_adamw(
    corpus_file: Path, tmp_path: Path, tiny_config
) -> None:
    """A model.ckpt whose config names no optimizer was trained by AdamW alone: it resumes
    with AdamW and its moments, whatever the default now is."""
    config = tiny_config(corpus_file, **{"train.optimizer": "adamw", "train.max_iters": 20})
    train_to_end(Run.start(config, tmp_path / "run"))
    ckpt = tmp_path / "run" / "model.ckpt"
    state = torch.load(ckpt, weights_only=True)
    del state["config"]["train"]["optimizer"]
    torch.save(state, ckpt)
    resumed = Run.resume(None, tmp_path / "run")
    try:
        assert resumed.config.train.optimizer == "adamw"
        assert [type(o).__name__ for o in resumed.trainer.optimizers] == ["AdamW"]
        assert resumed.trainer.step == 20
    finally:
        resumed.close()

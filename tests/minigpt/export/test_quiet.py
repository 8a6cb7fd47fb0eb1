"""Exporting and loading raise no false alarms: `minigpt export --hf` prints its one line,
and transformers loads each export, GPT-2 or GPT-NeoX, and generates from it without a
warning.

Each export also carries [sample] settings that once drew warnings: greedy with a top_k (a
greedy generation_config.json that held it would draw "may be ignored"), sampling with all
three filters, and the defaults (top_k 0, which transformers 5.0-5.6 said "may be ignored"
at generate(do_sample=False)). transformers 4.57.3-4.57.6 warned of "an incorrect regex
pattern" loading a cl100k export; pyproject.toml's floor, 5.7, keeps out both.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.minigpt.export.exports import train_run, write_corpus
from tests.warm import ForkServer

# Each tokenizer --hf exports (cl100k_base over its full id space, and compact as the default
# run has it), each with other [sample] settings, and each stock class: the char run has
# rotary positions without qk_norm, so it loads as GPTNeoXForCausalLM, the byte run the
# lesson's learned positions (GPT2LMHeadModel), the others the defaults (Persimmon).
KINDS: dict[str, dict[str, object]] = {
    "char-rotary": {
        "data.tokenizer": "char",
        "model.qk_norm": False,
        "sample.temperature": 0,
        "sample.top_k": 5,
    },
    "byte": {
        "data.tokenizer": "byte",
        "model.position": "learned",
        "model.qk_norm": False,
        "sample.temperature": 0.8,
        "sample.top_k": 5,
        "sample.top_p": 0.9,
    },
    "cl100k_base": {"data.tokenizer": "cl100k_base", "data.compact_vocab": False},
    "compact": {"data.tokenizer": "cl100k_base", "data.compact_vocab": True, "sample.top_k": 5},
}
CLASSES = {
    "char-rotary": "GPTNeoXForCausalLM",
    "byte": "GPT2LMHeadModel",
    "cl100k_base": "PersimmonForCausalLM",
    "compact": "PersimmonForCausalLM",
}
# The generation flags each export holds: greedy holds none, sampling holds all three.
FLAGS: dict[str, dict[str, object]] = {
    "char-rotary": {"do_sample": False},
    "byte": {"do_sample": True, "temperature": 0.8, "top_k": 5, "top_p": 0.9},
    "cl100k_base": {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0},
    "compact": {"do_sample": True, "temperature": 1.0, "top_k": 5, "top_p": 1.0},
}
# Serializes a vocabulary with a hole at id 1: the Rust side of tokenizers warns of it.
HOLES = "import tokenizers as t; t.Tokenizer(t.models.WordLevel({'a': 0, 'c': 2}, 'a')).to_str()"
CORRUPTED = "your vocabulary could be corrupted"


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, fork_server: ForkServer
) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """A two-step run of each tokenizer with its [sample] settings, exported by a `minigpt
    export --hf` process of its own (started as its run ends, while the next one trains):
    kind -> (that process, its output captured, and the folder it wrote)."""
    root = tmp_path_factory.mktemp("export-quiet")
    corpus = write_corpus(root)
    short = {"train.max_iters": 2, "train.eval_interval": 2}
    started = {}
    for kind, values in KINDS.items():
        run = train_run(root / kind, corpus, fork_server, **short, **values)
        out = root / f"{kind}-hf"
        command = [sys.executable, "-m", "minigpt", "export", "--run-dir", str(run)]
        pipe = subprocess.PIPE
        process = subprocess.Popen(
            [*command, "--hf", str(out)], stdout=pipe, stderr=pipe, text=True
        )
        started[kind] = (process, out)
    made = {}
    for kind, (process, out) in started.items():
        stdout, stderr = process.communicate(timeout=120)
        made[kind] = (
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr),
            out,
        )
    return made


def test_the_rust_side_of_tokenizers_would_be_heard(capfd: pytest.CaptureFixture) -> None:
    """The checks below can fail: a vocabulary with holes, serialized in this process and in
    a fresh one, prints the warning they look for (tokenizers reads TOKENIZERS_LOG, which
    exports.py sets, when it is first imported)."""
    import tokenizers as t

    t.Tokenizer(t.models.WordLevel({"a": 0, "c": 2}, "a")).to_str()
    here = capfd.readouterr()
    assert CORRUPTED in here.out + here.err, "tokenizers was imported before exports.py"
    fresh = subprocess.run([sys.executable, "-c", HOLES], capture_output=True, text=True)
    assert CORRUPTED in fresh.stdout + fresh.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_exporting_prints_its_one_line_and_nothing_else(
    exported: dict[str, tuple[subprocess.CompletedProcess[str], Path]], kind: str
) -> None:
    """`minigpt export --hf` prints where the export went, and no warning from Python,
    transformers or the Rust side of tokenizers (cl100k's unassigned ids are no holes)."""
    done, out = exported[kind]
    assert done.returncode == 0, done.stderr
    loads = f"AutoModelForCausalLM.from_pretrained({str(out)!r}) loads it"
    assert done.stdout == f"wrote {out}: {loads}\n"
    assert done.stderr == ""


@contextmanager
def heard(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Collect what is said inside the block: each Python warning, and each record at WARNING
    from transformers' or tokenizers' loggers, said afresh even if this process said it
    before (transformers says some only once per process)."""
    from transformers.utils import logging as hf_logging

    for once in ("warning_once", "info_once"):
        getattr(logging.Logger, once).cache_clear()
    loggers = [logging.getLogger(name) for name in ("transformers", "tokenizers")]
    for logger in loggers:  # transformers' does not propagate to the root, where caplog is
        caplog.set_level(logging.WARNING, logger=logger.name)
        logger.addHandler(caplog.handler)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # loading's progress bar is output, not a warning
    said: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield said
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        for logger in loggers:
            logger.removeHandler(caplog.handler)
    said += [f"{w.category.__name__}: {w.message}" for w in caught]
    said += [f"{r.name}: {r.getMessage()}" for r in caplog.records]


def test_a_greedy_config_with_a_top_k_would_be_heard(caplog: pytest.LogCaptureFixture) -> None:
    """The checks below can fail: a greedy generation config that holds a top_k, the kind
    the export never writes, draws transformers' "may be ignored", twice in one process."""
    from transformers import GenerationConfig

    for _ in range(2):
        with heard(caplog) as said:
            GenerationConfig(do_sample=False, top_k=5)
        assert any("may be ignored" in line and "top_k" in line for line in said), said
        caplog.clear()


@pytest.mark.parametrize("kind", KINDS)
def test_the_generation_config_holds_only_the_flags_that_apply(
    exported: dict[str, tuple[subprocess.CompletedProcess[str], Path]], kind: str
) -> None:
    """generation_config.json holds the run's sampling flags when it samples, none when it
    is greedy (temperature 0), and stops at the context (max_length, 16 in the tiny model)."""
    _, out = exported[kind]
    saved = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    saved.pop("transformers_version")
    assert saved == FLAGS[kind] | {"max_length": 16}


@pytest.mark.parametrize("kind", KINDS)
def test_loading_and_generating_warn_of_nothing(
    exported: dict[str, tuple[subprocess.CompletedProcess[str], Path]],
    kind: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    """AutoTokenizer and AutoModelForCausalLM load the export, as its stock class, which then
    generates with its generation_config.json, greedily (README's call) and by sampling,
    without a Python warning, a record at WARNING from transformers' or tokenizers' loggers,
    or a line from Rust."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, out = exported[kind]
    capfd.readouterr()
    with heard(caplog) as said:
        tokenizer = AutoTokenizer.from_pretrained(out)
        model = AutoModelForCausalLM.from_pretrained(out)
        prompt = tokenizer("the cat", return_tensors="pt").input_ids
        saved = model.generate(prompt)
        greedy = model.generate(prompt, do_sample=False)
        sampled = model.generate(prompt, do_sample=True)
    assert saved.shape == greedy.shape == sampled.shape == (1, 16)  # the context: max_length
    assert type(model).__name__ == CLASSES[kind]
    assert said == []
    assert capfd.readouterr() == ("", "")

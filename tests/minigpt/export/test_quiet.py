"""Exporting and loading raise no false alarms: `minigpt export --hf` prints its one line,
and transformers loads each export and generates from it without a warning.

Two warnings remain with older transformers, and no file the export writes avoids them
(minigpt/export/): transformers 4.57.3-4.57.6 loading a cl100k export they wrote warn of "an
incorrect regex pattern", and transformers before 5.7 warn that top_k 0 "may be ignored"
when asked for do_sample=False.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.minigpt.export.exports import train_run, write_corpus
from tests.warm import ForkServer

# Each tokenizer --hf exports; cl100k_base over its full id space (a compact one is refused).
KINDS: dict[str, dict[str, object]] = {
    "char": {"data.tokenizer": "char"},
    "byte": {"data.tokenizer": "byte"},
    "cl100k_base": {"data.tokenizer": "cl100k_base", "data.compact_vocab": False},
}
# Serializes a vocabulary with a hole at id 1: the Rust side of tokenizers warns of it.
HOLES = "import tokenizers as t; t.Tokenizer(t.models.WordLevel({'a': 0, 'c': 2}, 'a')).to_str()"
CORRUPTED = "your vocabulary could be corrupted"


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, fork_server: ForkServer
) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """A two-step run of each tokenizer, exported by a `minigpt export --hf` process of its
    own (started as its run ends, while the next one trains): kind -> (that process, its
    output captured, and the folder it wrote)."""
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


@pytest.mark.parametrize("kind", KINDS)
def test_loading_and_generating_warn_of_nothing(
    exported: dict[str, tuple[subprocess.CompletedProcess[str], Path]],
    kind: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    """AutoTokenizer and AutoModelForCausalLM load the export, which then samples with its
    generation_config.json and decodes greedily (README's call), without a Python warning,
    a record at WARNING from transformers' or tokenizers' loggers, or a line from Rust."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    _, out = exported[kind]
    loggers = [logging.getLogger(name) for name in ("transformers", "tokenizers")]
    for logger in loggers:  # transformers' does not propagate to the root, where caplog is
        caplog.set_level(logging.WARNING, logger=logger.name)
        logger.addHandler(caplog.handler)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # loading's progress bar is output, not a warning
    capfd.readouterr()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tokenizer = AutoTokenizer.from_pretrained(out)
            model = AutoModelForCausalLM.from_pretrained(out)
            prompt = tokenizer("the cat", return_tensors="pt").input_ids
            sampled = model.generate(prompt)
            greedy = model.generate(prompt, do_sample=False)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        for logger in loggers:
            logger.removeHandler(caplog.handler)
    assert sampled.shape == greedy.shape == (1, 16)  # the whole context: max_length
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    assert [f"{r.name}: {r.getMessage()}" for r in caplog.records] == []
    assert capfd.readouterr() == ("", "")

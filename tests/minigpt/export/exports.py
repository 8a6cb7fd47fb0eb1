"""What the export tests share: runs trained by `minigpt train`, and no network for the hub.

Importing this module sets HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE before any test imports
transformers, so nothing an export test does can reach for a download, and TOKENIZERS_LOG
before any imports tokenizers, whose Rust side reads it once, so that its warnings print
(on stderr) rather than only its errors (test_quiet.py looks for them).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from minigpt.cli.main import main
from tests.tiny import tiny_overrides
from tests.warm import ForkServer

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_LOG"] = "warn"

# Text with one- to four-byte characters, so the byte tokenizer meets split characters.
TEXT = "".join(
    f"the cat sat on mat number {i % 7}; le chat était là, 猫は{i % 3}匹 🐈.\n" for i in range(120)
)


def write_corpus(folder: Path) -> Path:
    """TEXT as a corpus file in folder."""
    path = folder / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def train_run(
    run_dir: Path, corpus: Path, fork_server: ForkServer | None = None, **values: object
) -> Path:
    """Train run_dir on corpus with `minigpt train`: the tiny config, values on top, the
    token cache beside the run (a module's fixture runs before the private-cache one).

    In this process (the test is then marked `trains`), or, given the fork server, in a
    `minigpt train` process forked from it: for tests whose assertions hold whatever the
    float arithmetic, which `make test-numerics` need not run again.
    """
    flags = [flag for pair in tiny_overrides(**values) for flag in ("--set", pair)]
    args = ["train", "--data", str(corpus), "--run-dir", str(run_dir), *flags]
    log = run_dir.with_name(f"{run_dir.name}.log")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINIGPT_CACHE", str(run_dir.parent / "token-cache"))
        if fork_server is None:
            code = main(args)
        else:
            with open(log, "w", encoding="utf-8") as output:
                command = [sys.executable, "-m", "minigpt", *args]
                popen = fork_server.subprocess_module().Popen  # a plain one where no fork
                code = popen(command, stdout=output, stderr=output).wait(120)
    assert code == 0, log.read_text(encoding="utf-8") if log.exists() else code
    return run_dir

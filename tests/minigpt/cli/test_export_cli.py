"""minigpt export's refusals: one line, exit 2, and nothing left where the export would go."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from minigpt.cli.main import main
from minigpt.export import hf as export_hf
from minigpt.export import tensorboard as export_tensorboard
from tests.minigpt.export.exports import train_run, write_corpus
from tests.warm import ForkServer


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, fork_server: ForkServer) -> dict[str, Path]:
    """Two runs of two steps: the tiny char model, and one on cl100k's compact vocabulary."""
    root = tmp_path_factory.mktemp("export-cli")
    corpus = write_corpus(root)
    short = {"train.max_iters": 2, "train.eval_interval": 2}
    compact = {"data.tokenizer": "cl100k_base", "data.compact_vocab": True}
    return {
        "char": train_run(root / "char", corpus, fork_server, **short),
        "compact": train_run(root / "compact", corpus, fork_server, **short, **compact),
    }


def _refused(args: list[str], capsys: pytest.CaptureFixture, message: str) -> None:
    """`minigpt export ARGS` exits 2 with one line on stderr containing message."""
    assert main(["export", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("minigpt: error: ") and captured.err.count("\n") == 1
    assert message in captured.err
    assert captured.out == ""


def _disk_full(*args: object) -> None:
    """Fail as a full disk does."""
    raise OSError(errno.ENOSPC, "No space left on device")


def _left(folder: Path) -> list[str]:
    """What is in folder now, temporary folders included."""
    return sorted(os.listdir(folder))


def test_a_run_without_a_checkpoint_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """No model.ckpt: the error names the file; no folder is made."""
    (tmp_path / "run").mkdir()
    run = str(tmp_path / "run")
    _refused(["--run-dir", run, "--hf", str(tmp_path / "out")], capsys, "no checkpoint at")
    assert _left(tmp_path) == ["run"]


def test_a_non_empty_folder_is_refused_and_kept(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """An export never writes into a folder that holds anything; an empty one is fine."""
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine", encoding="utf-8")
    for flag in ("--hf", "--tensorboard"):
        _refused(["--run-dir", str(runs["char"]), flag, str(taken)], capsys, "is not empty")
        assert _left(taken) == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    assert main(["export", "--run-dir", str(runs["char"]), "--hf", str(tmp_path / "empty")]) == 0
    assert "model.safetensors" in _left(tmp_path / "empty")


def test_a_path_that_cannot_be_written_is_refused(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A folder under a file cannot be made: refused before anything is written."""
    (tmp_path / "file").write_text("x", encoding="utf-8")
    out = str(tmp_path / "file" / "sub" / "out")
    _refused(["--run-dir", str(runs["char"]), "--hf", out], capsys, "is a file")
    assert _left(tmp_path) == ["file"]


def test_a_write_that_fails_midway_leaves_nothing(
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk filling up after the weights are written: the temporary folder and the
    parent folders the export made are gone, and the error is one line."""

    monkeypatch.setattr(export_hf, "save_hf_tokenizer", _disk_full)
    out = tmp_path / "new" / "deeper" / "out"
    args = ["--run-dir", str(runs["char"]), "--hf", str(out)]
    _refused(args, capsys, f"cannot write {out}: No space left on device")
    assert _left(tmp_path) == []


def test_both_exports_or_neither(
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the history cannot be written, the model already exported goes too."""

    monkeypatch.setattr(export_tensorboard, "_write_event", _disk_full)
    args = ["--run-dir", str(runs["char"]), "--hf", str(tmp_path / "hf")]
    _refused([*args, "--tensorboard", str(tmp_path / "tb")], capsys, "No space left on device")
    assert _left(tmp_path) == []


def test_the_compact_cl100k_vocabulary_is_refused_with_the_way_out(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """No Hugging Face tokenizer spells a compact vocabulary's unused tokens in bytes as
    minigpt does, so --hf refuses it, saying to train with the full vocabulary; its history
    still exports alone."""
    run = str(runs["compact"])
    both = ["--run-dir", run, "--hf", str(tmp_path / "hf"), "--tensorboard", str(tmp_path / "tb")]
    _refused(both, capsys, "--set data.compact_vocab=false")
    assert _left(tmp_path) == []
    assert main(["export", "--run-dir", run, "--tensorboard", str(tmp_path / "tb")]) == 0


@pytest.mark.parametrize(
    ("flag", "module"), [("--hf", "transformers"), ("--tensorboard", "tensorboard")]
)
def test_without_the_extra_one_line_says_what_to_install(
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    flag: str,
    module: str,
) -> None:
    """Where the [export] extra is not installed, the error names it and the one command
    that installs it into this environment, from this source checkout."""
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    args = ["--run-dir", str(runs["char"]), flag, str(tmp_path / "out")]
    root = Path(__file__).resolve().parents[3]
    command = f"{sys.executable} -m pip install -e '{root}[export]'"
    _refused(args, capsys, f"({module} is not installed): {command}")
    assert _left(tmp_path) == []


def test_neither_export_asked_for_is_refused(
    runs: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    """export needs --hf, --tensorboard or both."""
    _refused(["--run-dir", str(runs["char"])], capsys, "--hf OUT, --tensorboard OUT, or both")

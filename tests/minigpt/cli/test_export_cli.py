"""minigpt export's refusals: one line, exit 2, and nothing left where the export would go."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest
import torch

from minigpt.cli.main import main
from minigpt.export import folder
from minigpt.export import hf as export_hf
from minigpt.export import tensorboard as export_tensorboard
from tests.minigpt.export.exports import train_run, write_corpus
from tests.warm import ForkServer


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, fork_server: ForkServer) -> dict[str, Path]:
    """Two runs of two steps: the tiny char model, and one on cl100k's compact vocabulary
    as runs made it before the restricted rule (a checkpoint whose vocabulary has no rule)."""
    root = tmp_path_factory.mktemp("export-cli")
    corpus = write_corpus(root)
    short = {"train.max_iters": 2, "train.eval_interval": 2}
    compact = {"data.tokenizer": "cl100k_base", "data.compact_vocab": True}
    older = train_run(root / "older", corpus, fork_server, **short, **compact)
    state = torch.load(older / "model.ckpt", weights_only=True)
    del state["tokenizer"]["rule"]
    torch.save(state, older / "model.ckpt")
    return {"char": train_run(root / "char", corpus, fork_server, **short), "older": older}


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


def test_an_older_compact_vocabulary_is_refused_with_the_way_out(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """No Hugging Face tokenizer spells unkept tokens in bytes as the older compact
    vocabularies do, so --hf refuses such a run in one line saying what to train instead;
    its history still exports alone."""
    run = str(runs["older"])
    both = ["--run-dir", run, "--hf", str(tmp_path / "hf"), "--tensorboard", str(tmp_path / "tb")]
    _refused(both, capsys, "train a new run (its compact vocabulary exports exactly)")
    assert _left(tmp_path) == []
    assert main(["export", "--run-dir", run, "--tensorboard", str(tmp_path / "tb")]) == 0


@pytest.mark.parametrize(
    ("flag", "module", "extra"),
    [
        ("--hf", "transformers", ""),
        ("--hf", "safetensors.torch", ""),
        ("--tensorboard", "tensorboard", "[export]"),
    ],
)
def test_a_missing_package_is_one_line_saying_what_to_install(
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    flag: str,
    module: str,
    extra: str,
) -> None:
    """A missing package is one line naming it and the one command that installs it into
    this environment from this source checkout: the [export] extra for TensorBoard's, and
    minigpt-tui again for --hf's, which it depends on."""
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    args = ["--run-dir", str(runs["char"]), flag, str(tmp_path / "out")]
    root = Path(__file__).resolve().parents[3]
    command = f"{sys.executable} -m pip install -e '{root}{extra}'"
    if extra:
        _refused(args, capsys, f"needs the [export] extra ({module} is not installed): {command}")
    else:
        reinstall = f"installs it by default; install minigpt-tui again: {command}"
        _refused(args, capsys, f"{module} is not installed, though minigpt-tui {reinstall}")
    assert _left(tmp_path) == []


def test_installed_from_the_index_the_commands_name_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no source checkout above minigpt, the install commands name minigpt-tui on the
    package index, with the extra when one is asked for."""
    monkeypatch.setattr(folder, "__file__", "/nowhere/site-packages/minigpt/export/folder.py")
    python = sys.executable
    assert folder.install_command() == f"{python} -m pip install 'minigpt-tui'"
    assert folder.install_command("export") == f"{python} -m pip install 'minigpt-tui[export]'"


def test_neither_export_asked_for_is_refused(
    runs: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    """export needs --hf, --tensorboard or both."""
    _refused(["--run-dir", str(runs["char"])], capsys, "--hf OUT, --tensorboard OUT, or both")

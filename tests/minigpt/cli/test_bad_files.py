"""Damaged, foreign or odd files: one clear line, exit code 2, no traceback."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from minigpt.cli.main import main
from minigpt.service.run import Run

pytestmark = pytest.mark.trains

Scenario = Callable[[Path, Path, Callable], list[str]]


def _trained(tmp_path: Path, corpus: Path, tiny_config) -> Path:
    """A finished 10-step run; its folder."""
    config = tiny_config(corpus, **{"train.max_iters": 10, "train.checkpoint_interval": 10})
    run = Run.start(config, tmp_path / "run")
    while not run.done:
        run.advance()
    run.close()
    return run.run_dir.path


def _edit_checkpoint(folder: Path, change: Callable[[dict], None]) -> None:
    """Rewrite model.ckpt with one part of it changed."""
    state = torch.load(folder / "model.ckpt", weights_only=True)
    change(state)
    torch.save(state, folder / "model.ckpt")


def truncated(tmp_path: Path, corpus: Path, tiny_config) -> list[str]:
    """model.ckpt cut to half its size."""
    folder = _trained(tmp_path, corpus, tiny_config)
    ckpt = folder / "model.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    return ["train", "--run-dir", str(folder), "--resume"]


def overwritten(tmp_path: Path, corpus: Path, tiny_config) -> list[str]:
    """model.ckpt with its first kilobyte replaced by junk."""
    folder = _trained(tmp_path, corpus, tiny_config)
    ckpt = folder / "model.ckpt"
    data = bytearray(ckpt.read_bytes())
    data[:1024] = bytes(range(256)) * 4
    ckpt.write_bytes(bytes(data))
    return ["sample", "--run-dir", str(folder)]


def not_a_checkpoint(tmp_path: Path, corpus: Path, tiny_config) -> list[str]:
    """A text file given as the checkpoint."""
    return ["sample", "--ckpt", str(corpus)]


def foreign_tokenizer(tmp_path: Path, corpus: Path, tiny_config) -> list[str]:
    """A checkpoint whose tokenizer is of a kind this minigpt does not know."""
    folder = _trained(tmp_path, corpus, tiny_config)
    _edit_checkpoint(folder, lambda state: state["tokenizer"].update(kind="sentencepiece"))
    return ["train", "--run-dir", str(folder), "--resume"]


def weights_of_another_shape(tmp_path: Path, corpus: Path, tiny_config) -> list[str]:
    """A checkpoint whose config says d_model 64 over weights of d_model 32."""
    folder = _trained(tmp_path, corpus, tiny_config)
    _edit_checkpoint(folder, lambda state: state["config"]["model"].update(d_model=64))
    return ["sample", "--run-dir", str(folder)]


def resume_with_another_shape(tmp_path: Path, corpus: Path, tiny_config) -> list[str]:
    """Resuming a run with a different d_model."""
    folder = _trained(tmp_path, corpus, tiny_config)
    return ["train", "--run-dir", str(folder), "--resume", "--set", "model.d_model=64"]


def resume_with_another_tokenizer(tmp_path: Path, corpus: Path, tiny_config) -> list[str]:
    """Resuming a char run with the byte tokenizer."""
    folder = _trained(tmp_path, corpus, tiny_config)
    return ["train", "--run-dir", str(folder), "--resume", "--set", 'data.tokenizer="byte"']


def newer_config(tmp_path: Path, corpus: Path, tiny_config) -> list[str]:
    """A config with a key only a newer minigpt would know."""
    config = tmp_path / "newer.toml"
    config.write_text("[train]\nmax_iters = 10\nmuon_momentum = 0.95\n", encoding="utf-8")
    return ["train", "--config", str(config), "--data", str(corpus)]


def one_character(tmp_path: Path, corpus: Path, tiny_config) -> list[str]:
    """A corpus of a single character."""
    (tmp_path / "one.txt").write_text("a", encoding="utf-8")
    return ["train", "--data", str(tmp_path / "one.txt")]


def binary(tmp_path: Path, corpus: Path, tiny_config) -> list[str]:
    """A PNG saved under a .txt name."""
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    return ["train", "--data", str(tmp_path / "image.txt")]


def latin1(tmp_path: Path, corpus: Path, tiny_config) -> list[str]:
    """Text in Latin-1, not UTF-8."""
    (tmp_path / "latin.txt").write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1") * 50)
    return ["train", "--data", str(tmp_path / "latin.txt")]


CASES = [
    (truncated, "not a readable checkpoint (truncated or damaged?)"),
    (overwritten, "not a readable checkpoint (truncated or damaged?)"),
    (not_a_checkpoint, "not a readable checkpoint"),
    (foreign_tokenizer, "sentencepiece"),
    (weights_of_another_shape, "does not fit"),
    (resume_with_another_shape, "cannot resume with changed model.d_model"),
    (resume_with_another_tokenizer, "cannot resume with changed data.tokenizer"),
    (newer_config, "newer minigpt"),
    (one_character, "needs at least context_length + 1"),
    (binary, "looks binary"),
    (latin1, "not valid UTF-8 at byte 3"),
]


@pytest.mark.parametrize(("scenario", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_file_gets_one_line_and_exit_code_2(
    scenario: Scenario,
    message: str,
    tmp_path: Path,
    corpus_file: Path,
    tiny_config,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI names the problem in one line on stderr and exits 2 (in-process: a
    traceback would escape main() and fail the test; test_cli runs the real process)."""
    args = scenario(tmp_path, corpus_file, tiny_config)
    monkeypatch.chdir(tmp_path)  # where a default run dir would go
    capsys.readouterr()
    assert main(args) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("minigpt: error:")]
    assert len(errors) == 1 and message in errors[0], stderr

"""The minigpt command: train, sample, bench, and one-line errors for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from minigpt.cli.main import main
from minigpt.service import sample_queue
from tests.tiny import tiny_overrides

# The tiny config as --set flags, on cl100k (compact) tokens, sampling at evals every 10 steps.
CLI = {"data.tokenizer": "cl100k_base", "sample.at_eval": True, "train.eval_interval": 10}
TINY = [flag for pair in tiny_overrides(**CLI) for flag in ("--set", pair)]


def _train(corpus: Path, run_dir: Path) -> Path:
    """Train run_dir for 10 steps on corpus with cl100k compact vocab (evals at 0 and 10)."""
    code = main(
        ["train", "--data", str(corpus), "--run-dir", str(run_dir),
         "--set", "train.max_iters=10", *TINY]
    )  # fmt: skip
    assert code == 0
    return run_dir


@pytest.fixture
def trained(corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    """A run directory trained for 10 steps on the small corpus with cl100k compact vocab."""
    run_dir = _train(corpus_file, tmp_path / "run")
    capsys.readouterr()
    return run_dir


@pytest.mark.trains
def test_train_answers_the_sample_prompt_at_its_last_eval_before_exiting(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`minigpt train` waits for the final eval's sample, so the run ends with its answer,
    even when the first eval's sample is still streaming at the final eval."""
    # About one token between steps, as on a slow machine: step 0's 200 tokens are still
    # streaming at step 10's eval, whatever the kernels' speed.
    monkeypatch.setattr(sample_queue, "SAMPLE_SLICE_S", 1e-6)
    run_dir = _train(corpus_file, tmp_path / "run")
    records = [json.loads(line) for line in (run_dir / "samples.jsonl").open()]
    assert [(r["step"], r["at_eval"], r["tokens"]) for r in records] == [
        (0, True, 200),
        (10, True, 200),
    ]
    assert records[-1]["prompt"] == "The for statement"


@pytest.mark.trains
def test_train_prints_progress_and_eval_lines(trained: Path, capsys: pytest.CaptureFixture) -> None:
    """A finished run resumed with more steps prints step, eval and checkpoint lines."""
    code = main(
        ["train", "--run-dir", str(trained), "--resume", "--set", "train.max_iters=20",
         "--log-interval", "5"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "| step 10" in out.splitlines()[0]
    assert "step 15/20 | loss " in out and "tok/s" in out and "ETA" in out
    assert "step 20: train loss" in out and "val loss" in out
    assert f"saved {trained / 'model.ckpt'} (step 20)" in out


@pytest.mark.trains
def test_sample_is_identical_with_and_without_kv_cache(
    trained: Path, capsys: pytest.CaptureFixture
) -> None:
    """The same checkpoint and seed print the same text with and without the KV cache."""
    texts = []
    for flag in ([], ["--no-kv-cache"]):
        args = ["sample", "--run-dir", str(trained), "--prompt", "the cat 你好 🙂", "--seed", "3"]
        assert main([*args, "--max-new-tokens", "40", *flag]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1]
    assert texts[0].startswith("the cat 你好 🙂")
    assert len(texts[0]) > len("the cat 你好 🙂") + 5


@pytest.mark.trains
def test_bench_prints_text_or_one_json_line(
    corpus_file: Path, capsys: pytest.CaptureFixture
) -> None:
    """bench reports speed, size and memory as lines, or with --json as one JSON object."""
    args = ["bench", "--data", str(corpus_file), "--steps", "2", "--warmup", "1", *TINY]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tokens_per_sec"] > 0 and result["ms_per_step"] > 0
    assert result["params"] > 0 and result["vocab_size"] > 256 and result["peak_rss_mb"] > 0
    assert result["config"]["model"]["d_model"] == 32
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.startswith("tokens/s ") and f"{result['params']:,} params" in text
    assert "over 2 steps after 1 warmup" in text and f"torch {result['torch']}" in text


def test_tui_resume_without_a_checkpoint_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """minigpt-tui --resume on a run with no model.ckpt exits 2 with one line, no UI."""
    from tui import cli as tui_cli

    monkeypatch.setattr(tui_cli, "make_app", lambda link: pytest.fail("the UI was started"))
    assert tui_cli.main(["--resume", "--run-dir", str(tmp_path / "typo")]) == 2
    error = capsys.readouterr().err
    assert error == (
        f"minigpt-tui: error: --resume: no checkpoint at {tmp_path / 'typo' / 'model.ckpt'};"
        " leave out --resume to start a new run\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "train.learnin_rate=1e-3"], "did you mean train.learning_rate?"),
        (["--set", "train.max_iters=abc"], "train.max_iters: expected an integer"),
        (["--set", "model.dropout=1.5"], "model.dropout: must be >= 0 and < 1"),
        (["--set", "model.num_heads=5"], "model.num_heads"),
        (["--set", "train.device=gpu"], "train.device: must be one of"),
        (["--data", "no/such/file.txt"], "no such file or folder"),
        (["--config", "missing.toml"], "missing.toml: config file not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Each mistake prints one error line naming what to fix, and exits 2."""
    assert main(["train", "--run-dir", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert err.startswith("minigpt: error: ") and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_bad_config_file_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """An unknown key in a config file is reported with the file and line."""
    config = tmp_path / "my.toml"
    config.write_text("[model]\nd_model = 64\n\n[train]\nlearnig_rate = 1e-3\n")
    assert main(["train", "--config", str(config), "--run-dir", str(tmp_path / "r")]) == 2
    assert f"{config}:5: train.learnig_rate: unknown key" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "is empty"), ("short", "split has"), (b"\xff\xfe bad", "not valid UTF-8")],
)
def test_bad_corpus_is_one_line_and_exit_2(
    text: str | bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Empty, too short and undecodable corpora each get a clear message."""
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert main(["train", "--data", str(corpus), "--run-dir", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err


def test_sample_without_checkpoint_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Sampling a run dir with no model.ckpt names the missing file."""
    assert main(["sample", "--run-dir", str(tmp_path)]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_console_error_has_no_traceback(tmp_path: Path) -> None:
    """The real process prints one line on stderr and exits 2 for a bad key."""
    result = subprocess.run(
        [sys.executable, "-m", "minigpt", "train", "--set", "model.d_modl=3"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "model.d_modl: unknown key (did you mean model.d_model?)" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_runs_without_torch(tmp_path) -> None:
    """`minigpt status` answers without loading torch, whose import is most of its time."""
    code = (
        "import sys; from minigpt.cli.main import main; "
        f"code = main(['status', '--run-dir', {str(tmp_path)!r}]); "
        "print(code, 'torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1] == "0 False"


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        # The engine stays free of the UI's libraries.
        ("minigpt, minigpt.cli.main, minigpt.cli.commands", "textual rich plotext tui"),
        # Exporting's packages load when an export runs, not with the commands.
        (
            "minigpt.cli.main, minigpt.cli.commands",
            "transformers tensorboard safetensors tokenizers huggingface_hub",
        ),
        # Talking to an engine (what the dashboard does) never loads torch, nor does the
        # command line until a command that needs it runs.
        ("minigpt, minigpt.service.client, minigpt.cli.status, minigpt.cli.main", "torch numpy"),
    ],
)
def test_import_hygiene(modules: str, forbidden: str) -> None:
    """Importing these modules loads none of the forbidden packages."""
    code = (
        f"import sys, {modules}; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({forbidden.split()!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

"""`minigpt compare`: the settings that differ between runs and where each got to, as a table
or JSON, from run folders written directly (no training)."""

import json
from pathlib import Path

import pytest

from minigpt.cli.main import main
from tests.run_folders import SECONDS, finished_run
from tests.tiny import tiny_config


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    """Two runs that differ in learning rate and width (and in what does not count)."""
    slow = tiny_config(**{"train.learning_rate": 0.001})
    fast = tiny_config(
        **{"train.learning_rate": 0.02, "model.d_model": 64, "notify.on_alert": False}
    )
    return [
        finished_run(tmp_path / "slow", [3.0, 2.5, 2.6], slow),
        finished_run(tmp_path / "fast", [3.0, 2.2, 2.2], fast),
    ]


def test_the_table_has_a_row_per_run_and_a_column_per_difference(
    runs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The columns are the differing keys alone, then the best val loss, its step and the
    training time to it (a tie goes to the first eval that reached it)."""
    assert main(["compare", *map(str, runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "run", "model.d_model", "train.learning_rate", "best", "val", "step", "time", "to", "best",
    ]  # fmt: skip
    assert lines[1].split() == ["slow", "32", "0.001", "2.5000", "10", "1s"]
    assert lines[2].split() == ["fast", "64", "0.02", "2.2000", "10", "1s"]
    assert len(lines) == 3


def test_json_lists_the_differences_and_each_runs_best(
    runs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: `differs` holds exactly the differing keys, each run's value in the order the
    runs were given; `runs` each one's folder, name, best val loss, its step and time."""
    assert main(["compare", str(runs[1]), str(runs[0]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["differs"] == {"model.d_model": [64, 32], "train.learning_rate": [0.02, 0.001]}
    assert out["runs"] == [
        {"run_dir": str(runs[1]), "name": "fast", "best_val_loss": 2.2, "best_step": 10,
         "seconds_to_best": SECONDS},
        {"run_dir": str(runs[0]), "name": "slow", "best_val_loss": 2.5, "best_step": 10,
         "seconds_to_best": SECONDS},
    ]  # fmt: skip


def test_runs_alike_and_runs_without_evals_are_said_plainly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs whose settings are the same say so; a run with no eval to its name has dashes,
    and nulls in JSON."""
    a = finished_run(tmp_path / "a", [None, None], tiny_config())
    b = finished_run(tmp_path / "b", [], tiny_config(**{"train.threads": 2}))
    assert main(["compare", str(a), str(b)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "no setting differs between these runs"
    assert lines[2].split() == ["a", "-", "-", "-"]
    assert main(["compare", str(a), str(b), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["differs"] == {}
    assert out["runs"][1] == {
        "run_dir": str(b), "name": "b", "best_val_loss": None, "best_step": None,
        "seconds_to_best": None,
    }  # fmt: skip


def test_a_missing_or_broken_run_is_one_line_and_exit_2(
    runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing folder, one without config.toml or with a bad one: one line naming it, exit 2."""
    (tmp_path / "bare").mkdir()
    broken = finished_run(tmp_path / "broken", [3.0])
    (broken / "config.toml").write_text("[train]\nlearning_rate = -1\n", encoding="utf-8")
    for other, said in [
        ("nope", "nope: no such run directory"),
        ("bare", "bare: not a run directory (it has no config.toml)"),
        ("broken", "broken/config.toml:2: train.learning_rate"),
    ]:
        assert main(["compare", str(runs[0]), str(tmp_path / other)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("minigpt: error: ") and said in err and err.count("\n") == 1


def test_one_run_is_a_usage_error(runs: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Comparing needs two runs at least: argparse's usage line, exit 2."""
    with pytest.raises(SystemExit) as exit:
        main(["compare", str(runs[0])])
    assert exit.value.code == 2
    assert "usage: minigpt compare" in capsys.readouterr().err


def test_relu_against_relu2_lists_the_activation_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: a relu and a relu2 run differ in model.activation and nothing else."""
    relu = finished_run(tmp_path / "relu", [3.0, 2.5], tiny_config(**{"model.activation": "relu"}))
    relu2 = tiny_config(**{"model.activation": "relu2", "notify.on_finish": False})
    squared = finished_run(tmp_path / "relu2", [3.0, 2.4], relu2)
    assert main(["compare", str(relu), str(squared), "--json"]) == 0
    differs = json.loads(capsys.readouterr().out)["differs"]
    assert differs == {"model.activation": ["relu", "relu2"]}

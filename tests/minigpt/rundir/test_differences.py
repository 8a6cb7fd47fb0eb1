"""What differs between runs: the counted keys whose values are not all the same, and a run's
config read in one line or refused in one."""

from pathlib import Path

import pytest

from minigpt.errors import ConfigError, MiniGPTError
from minigpt.rundir.differences import counts, differences
from minigpt.rundir.layout import RunDir
from tests.tiny import tiny_config


def test_the_keys_that_differ_anywhere_with_each_runs_value() -> None:
    """A key differing in any one run is listed with every run's value, in run order, keys
    in declaration order; keys the same in all are not."""
    a = tiny_config(**{"train.learning_rate": 0.001})
    b = tiny_config(**{"train.learning_rate": 0.02, "model.d_model": 64})
    c = tiny_config(**{"train.learning_rate": 0.001})
    assert differences([a, b, c]) == {
        "model.d_model": [32, 64, 32],
        "train.learning_rate": [0.001, 0.02, 0.001],
    }
    assert differences([a, c]) == {}
    assert differences([a]) == {}


def test_settings_that_do_not_change_training_are_not_differences() -> None:
    """notify.*, sample.*, threads, checkpoint_interval and learned_views are not counted."""
    quiet = {
        "notify.on_alert": False,
        "notify.url": "https://ntfy.sh/x",
        "sample.prompt": "Once",
        "sample.temperature": 0.5,
        "train.threads": 3,
        "train.checkpoint_interval": 7,
        "train.learned_views": True,
    }
    assert differences([tiny_config(), tiny_config(**quiet)]) == {}
    assert not counts("notify.url") and counts("train.seed") and counts("train.eval_iters")


def test_one_corpus_under_two_spellings_is_no_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """data.path is the file it names: relative, ./ and absolute spellings are one corpus;
    another file or a builtin corpus differs, listed as each config writes it."""
    monkeypatch.chdir(tmp_path)
    spellings = ["corpus.txt", "./corpus.txt", str(tmp_path / "corpus.txt")]
    same = [tiny_config(**{"data.path": path}) for path in spellings]
    assert differences(same) == {}
    other = tiny_config(**{"data.path": "other.txt"})
    builtin = tiny_config(**{"data.path": "builtin:python-docs"})
    assert differences([same[1], other, builtin]) == {
        "data.path": ["./corpus.txt", "other.txt", "builtin:python-docs"]
    }


def test_a_run_config_is_read_or_refused_in_one_line(tmp_path: Path) -> None:
    """A folder that is missing, has no config.toml, or a bad one is one clear line."""
    with pytest.raises(MiniGPTError, match=r"nope: no such run directory$"):
        RunDir(tmp_path / "nope").read_config()
    (tmp_path / "bare").mkdir()
    with pytest.raises(MiniGPTError, match=r"bare: not a run directory \(it has no config.toml\)$"):
        RunDir(tmp_path / "bare").read_config()
    broken = RunDir(tmp_path / "broken")
    broken.create()
    broken.config.write_text("[model]\nd_model = 'wide'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config.toml:2: model.d_model") as error:
        broken.read_config()
    assert "\n" not in str(error.value)
    broken.write_config(tiny_config(**{"model.d_model": 64}))
    assert broken.read_config().model.d_model == 64

"""Tests for minigpt.config: defaults, overrides, validation messages and round trips."""

import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigpt import config
from minigpt.config import (
    Config,
    all_keys,
    apply_values,
    changed_keys,
    config_from_dict,
    config_to_dict,
    config_to_toml,
    help_text,
    is_hot,
    load_config,
    parse_config,
    parse_overrides,
    restart_keys,
)
from minigpt.config_header import (
    DEFAULT_HEADER,
    EXPORTED_HEADER,
    RUN_HEADER,
    RUNNING_HEADER,
    restart_rule_comment,
)
from minigpt.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

SHIPPED = Path(__file__).parents[2] / "config.toml"
RESTART = {"train.optimizer", "train.seed", "train.device", "train.dtype", "train.compile"}


def error_of(text: str) -> str:
    """The ConfigError message parse_config gives for text, sourced as config.toml."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.toml")
    return str(info.value)


def test_shipped_config_is_the_commented_defaults() -> None:
    """config.toml is config_to_toml of the defaults: every key, its default, its help comment."""
    text = SHIPPED.read_text(encoding="utf-8")
    assert text == config_to_toml(Config(), DEFAULT_HEADER)
    keys = [f"{s}.{k}" for s, table in tomllib.loads(text).items() for k in table]
    assert keys == all_keys()
    assert parse_config(text, str(SHIPPED)) == Config()
    assert f"d_model = 128{' ' * 18}# {help_text('model.d_model')}\n" in text


def test_load_config_without_file_gives_defaults(tmp_path: Path, monkeypatch) -> None:
    """With no path and no ./config.toml, load_config returns the dataclass defaults."""
    monkeypatch.chdir(tmp_path)
    assert load_config() == Config()


def test_load_config_reads_cwd_config(tmp_path: Path, monkeypatch) -> None:
    """With no path, ./config.toml is read; a missing key keeps its default."""
    (tmp_path / "config.toml").write_text("[train]\nmax_iters = 7\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.train.max_iters == 7
    assert config.model == Config().model


def test_overrides_parse_toml_values_and_raw_strings(tmp_path: Path, monkeypatch) -> None:
    """Override values are TOML (ints, floats, bools, quoted strings), else raw strings."""
    monkeypatch.chdir(tmp_path)
    config = load_config(
        None,
        [
            "train.max_iters=300",
            "train.learning_rate = 3e-4",
            "train.weight_decay=0",
            "train.compile=true",
            'train.device="cuda:1"',
            "data.path=foo.txt",
            "sample.prompt=Hello world",
            "sample.max_new_tokens=10",
            "sample.max_new_tokens=20",
        ],
    )
    assert config.train.max_iters == 300
    assert config.train.learning_rate == 3e-4
    assert config.train.weight_decay == 0.0 and isinstance(config.train.weight_decay, float)
    assert config.train.compile == "true"  # a TOML boolean, as before "auto" existed
    assert config.train.device == "cuda:1"
    assert config.data.path == "foo.txt"
    assert config.sample.prompt == "Hello world"
    assert config.sample.max_new_tokens == 20  # the last override wins


def test_string_override_keeps_text_that_looks_like_a_number() -> None:
    """A string key given a TOML-looking value keeps the text as typed."""
    assert parse_overrides(["sample.prompt=42", "data.path=1e3"]) == {
        "sample.prompt": "42",
        "data.path": "1e3",
    }


def test_overrides_apply_on_top_of_file(tmp_path: Path) -> None:
    """Overrides win over the file; file keys not overridden are kept."""
    path = tmp_path / "run.toml"
    path.write_text("[train]\nmax_iters = 7\nbatch_size = 3\n", encoding="utf-8")
    config = load_config(path, ["train.max_iters=9"])
    assert (config.train.max_iters, config.train.batch_size) == (9, 3)


@pytest.mark.parametrize("override", ["train.max_iters", "max_iters=3", ".x=1", "train.=1"])
def test_malformed_override(override: str) -> None:
    """An override that is not section.key=value is rejected, naming it."""
    with pytest.raises(ConfigError, match=re.escape(f'override "{override}"')):
        load_config(None, [override])


def test_bad_override_value_names_the_override(tmp_path: Path, monkeypatch) -> None:
    """A bad override value is reported against the override, not the file."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(None, ["train.max_iters=abc"])
    assert str(info.value) == (
        'override "train.max_iters=abc": train.max_iters: expected an integer, got "abc" (str)'
    )


def test_missing_file(tmp_path: Path) -> None:
    """An explicit path that does not exist is a ConfigError naming the path."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=re.escape(f"{missing}: config file not found")):
        load_config(missing)


def test_unknown_key_suggests_same_section_with_line() -> None:
    """A misspelt key names its line and the closest key of its section."""
    text = "[model]\nd_model = 64\n\n[train]\nmax_iters = 5\n\nlearnin_rate = 1e-3\n"
    assert error_of(text) == (
        "config.toml:7: train.learnin_rate: unknown key (did you mean train.learning_rate?)"
    )


def test_unknown_key_suggests_other_section() -> None:
    """A key in the wrong section points at the section it belongs to."""
    assert error_of("[model]\nlearning_rate = 1e-3\n") == (
        "config.toml:2: model.learning_rate: unknown key (did you mean train.learning_rate?)"
    )


def test_key_outside_its_section() -> None:
    """A key written above every [section] header is told which section it belongs in."""
    assert error_of("d_model = 48\n[model]\n") == (
        "config.toml:1: d_model: set outside any section; it belongs under [model]"
    )


def test_unknown_section() -> None:
    """An unknown section is named with the closest real section."""
    assert error_of("[modle]\nd_model = 64\n") == (
        "config.toml:1: modle: unknown section (did you mean [model]?)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[train]\nmax_iters = "abc"', 'train.max_iters: expected an integer, got "abc" (str)'),
        ("[train]\nmax_iters = true", "train.max_iters: expected an integer, got true (bool)"),
        ("[train]\nmax_iters = 2.0", "train.max_iters: expected an integer, got 2.0 (float)"),
        ("[model]\ndropout = false", "model.dropout: expected a number, got false (bool)"),
        ("[data]\npath = 3", "data.path: expected a string, got 3 (int)"),
        ("[train]\ncompile = 1", "train.compile: expected auto, true or false, got 1 (int)"),
        ("model = 3", "model: expected a table ([model]), got 3 (int)"),
        ("[sample]\ntemperature = nan", "sample.temperature: expected a finite number, got nan"),
    ],
)
def test_wrong_type(text: str, message: str) -> None:
    """A value of the wrong type names the key, the expected type and what was given."""
    assert error_of(text).split(": ", 1)[1] == message


def test_int_accepted_for_float() -> None:
    """An integer for a float key is accepted and stored as a float."""
    config = parse_config("[train]\nlearning_rate = 1\nmin_lr = 0\n")
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model]\ndropout = 1.5", "config.toml:2: model.dropout: must be >= 0 and < 1, got 1.5"),
        ("[train]\nbatch_size = 0", "config.toml:2: train.batch_size: must be >= 1, got 0"),
        ("[sample]\ntop_p = 0", "config.toml:2: sample.top_p: must be > 0 and <= 1, got 0"),
        ("[data]\npath = ' '", "config.toml:2: data.path: must not be empty"),
        (
            "[model]\nlogit_softcap = -1.0",
            "config.toml:2: model.logit_softcap: must be >= 0, got -1.0",
        ),
    ],
)
def test_out_of_range(text: str, message: str) -> None:
    """A value outside its range names the key, the allowed range and the value."""
    assert error_of(text) == message


def test_choices() -> None:
    """A value outside a key's choices lists them; cuda:N accepts any device number."""
    assert error_of('[train]\ndevice = "gpu"') == (
        'config.toml:2: train.device: must be one of auto, cpu, cuda, cuda:N, mps; got "gpu"'
    )
    assert parse_config('[train]\ndevice = "cuda:12"').train.device == "cuda:12"
    assert "data.tokenizer: must be one of" in error_of('[data]\ntokenizer = "bpe"')
    assert error_of('[model]\nactivation = "swish"') == (
        'config.toml:2: model.activation: must be one of relu, relu2, gelu; got "swish"'
    )
    assert error_of('[model]\nposition = "alibi"') == (
        'config.toml:2: model.position: must be one of learned, rotary; got "alibi"'
    )


@pytest.mark.parametrize(
    "url",
    ["ntfy.sh/topic", "ftp://host/x", "http://", "http://host:99999/", "http://a b", "file:///x"],
)
def test_a_webhook_must_be_a_web_address(url: str) -> None:
    """notify.url takes only an http(s) address with a host, and says so naming the key."""
    assert error_of(f"[notify]\nurl = {url!r}") == (
        f'config.toml:2: notify.url: must be an http:// or https:// address, or "" for none; '
        f'got "{url}"'
    )


def test_a_webhook_may_be_none_or_any_web_address() -> None:
    """An empty notify.url (no webhook) and http or https addresses with ports and paths load."""
    for url in ("", "https://ntfy.sh/my-run", "http://127.0.0.1:8080/hook?x=1"):
        assert parse_config(f"[notify]\nurl = {url!r}").notify.url == url


def test_num_heads_must_divide_d_model() -> None:
    """num_heads not dividing d_model is an error naming both keys."""
    message = error_of("[model]\nd_model = 128\nnum_heads = 5\n")
    assert message.startswith("config.toml:3: model.num_heads: 5 does not divide model.d_model")


def test_rotary_needs_an_even_head_size() -> None:
    """Rotary positions pair a head's dimensions: an odd head size is an error naming the
    keys that make it, and an even one loads."""
    message = error_of('[model]\nd_model = 12\nnum_heads = 4\nposition = "rotary"\n')
    assert message == (
        "config.toml:4: model.position: rotary needs an even head size, and "
        "model.d_model / model.num_heads = 3; choose a head count that leaves it even"
    )
    assert parse_config('[model]\nd_model = 12\nnum_heads = 3\nposition = "rotary"').model


def test_min_lr_must_not_exceed_learning_rate() -> None:
    """min_lr above learning_rate is an error naming both keys."""
    message = error_of("[train]\nlearning_rate = 1e-3\nmin_lr = 1e-2\n")
    assert message.startswith("config.toml:3: train.min_lr: must not exceed train.learning_rate")


def test_toml_syntax_error_has_line_and_column() -> None:
    """A TOML syntax error is one line with the source, line and column."""
    assert error_of("[model]\nd_model = = 3\n") == "config.toml: line 2, column 11: Invalid value"
    assert error_of("[model]\nd_model = ") == "config.toml: line 2, column 11: Invalid value"


def test_apply_values_returns_validated_copy() -> None:
    """apply_values returns a new config with the changes; the original is unchanged."""
    old = Config()
    new = apply_values(old, {"train.learning_rate": 3e-4, "sample.top_k": 5})
    assert (new.train.learning_rate, new.sample.top_k) == (3e-4, 5)
    assert old == Config()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"train.batch_size": 0}, "train.batch_size: must be >= 1, got 0"),
        ({"train.learning_rate": 1e-5}, "train.min_lr: must not exceed train.learning_rate"),
        ({"model.num_heads": 3}, "model.num_heads: 3 does not divide model.d_model = 128"),
        ({"train.lerning_rate": 1}, "did you mean train.learning_rate?"),
        ({"lr": 1}, "lr: expected a dotted key"),
        ({"sample.temperature": 10**400}, "sample.temperature: expected a finite number"),
    ],
)
def test_apply_values_rejects_bad_values(values: dict, message: str) -> None:
    """apply_values validates the whole config, cross-field checks included."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_values(Config(), values)


def test_changed_and_restart_keys() -> None:
    """changed_keys lists every difference; restart_keys only those that are not hot."""
    old = Config()
    new = apply_values(old, {"train.batch_size": 4, "train.seed": 1, "model.dropout": 0.2})
    assert changed_keys(old, new) == ["model.dropout", "train.batch_size", "train.seed"]
    assert restart_keys(old, new) == ["model.dropout", "train.seed"]
    assert changed_keys(old, old) == []


def test_hot_keys() -> None:
    """All train keys but optimizer/seed/device/dtype/compile and all sample and notify keys
    are hot."""
    for key in all_keys():
        section = key.split(".")[0]
        hot = section in ("sample", "notify") or (section == "train" and key not in RESTART)
        assert is_hot(key) is hot, key
    with pytest.raises(ConfigError, match=re.escape("did you mean train.learning_rate")):
        is_hot("train.learning_rat")


COUNTS = ("no", "that", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def hot_as_written(comment: str) -> dict[str, bool]:
    """Each key's hot flag as the restart rule's comment lines state it."""
    sentence = " ".join(line.removeprefix("# ") for line in comment.splitlines())
    hot_part, fresh_part = sentence.split("; ")
    stated: dict[str, bool] = {}
    excepted = 0
    for part, hot in ((hot_part, True), (fresh_part, False)):
        for section, but in re.findall(r"\[(\w+)\](?: \(but ([^)]*)\))?", part):
            exceptions = but.split(", ") if but else []
            excepted += len(exceptions) if hot else 0
            for key in all_keys():
                if key.startswith(f"{section}."):
                    stated[key] = hot != (key.split(".")[1] in exceptions)
    for key in re.findall(r"\b\w+\.\w+\b", hot_part):
        stated[key] = True
    if excepted:
        assert f" {COUNTS[excepted]} key" in fresh_part, "the count of keys excepted above"
    return stated


@pytest.mark.parametrize("changed", [{}, {"train.batch_size": False}, {"model.dropout": True}])
def test_restart_rule_is_the_keys_own(monkeypatch, changed: dict[str, bool]) -> None:
    """The headers' sentence on what needs a fresh model names every restart key and no hot
    one, by section with its exceptions, and follows a key whose rule changes."""
    real = config.is_hot
    monkeypatch.setattr(config, "is_hot", lambda key: changed.get(key, real(key)))
    assert hot_as_written(restart_rule_comment()) == {key: config.is_hot(key) for key in all_keys()}
    assert DEFAULT_HEADER.endswith(restart_rule_comment()) == (not changed)


@pytest.mark.parametrize("header", [DEFAULT_HEADER, RUN_HEADER, RUNNING_HEADER, EXPORTED_HEADER])
def test_every_header_is_comments_over_the_config(header: str) -> None:
    """Each config file's header is TOML comment lines only: the file parses to the config
    written under it, and the header stays its opening."""
    written = apply_values(Config(), {"train.max_iters": 7})
    text = config_to_toml(written, header)
    assert all(line.startswith("#") for line in header.splitlines())
    assert text.startswith(header) and parse_config(text, "config.toml") == written


def test_toml_round_trip() -> None:
    """config_to_toml output parses back to an equal config."""
    config = apply_values(
        Config(),
        {"train.learning_rate": 3e-4, "sample.prompt": 'say "hi"\n', "data.compact_vocab": False},
    )
    assert parse_config(config_to_toml(config)) == config
    assert config_from_dict(config_to_dict(config)) == config


def test_config_from_dict_names_source() -> None:
    """Without TOML text, config_from_dict errors are prefixed with the source alone."""
    with pytest.raises(ConfigError, match=r"^ckpt\.pt: model\.dropout: must be"):
        config_from_dict({"model": {"dropout": 2.0}}, source="ckpt.pt")


KEY_NAMES = st.sampled_from([*all_keys(), "model", "train.bogus", "x"]) | st.text(max_size=8)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=5)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["model", "train", "data", "sample"]) | st.text(max_size=6),
        st.dictionaries(KEY_NAMES.map(lambda k: k.split(".")[-1]), VALUES, max_size=4) | VALUES,
        max_size=4,
    )
)
def test_arbitrary_dicts_raise_only_config_error(data: dict) -> None:
    """Any nested dict either validates or raises ConfigError with a one-line message."""
    try:
        config_from_dict(data, text="")
    except ConfigError as err:
        assert "\n" not in str(err)


TOML_LINES = st.sampled_from(
    ["[model]", "[train]", "[[data]]", "d_model = 7", "num_heads = 3", "min_lr = 1.0", "="]
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOML_LINES | st.text(max_size=12), max_size=6).map("\n".join))
def test_arbitrary_toml_raises_only_config_error(text: str) -> None:
    """Any text either parses to a config or raises ConfigError with a one-line message."""
    try:
        parse_config(text)
    except ConfigError as err:
        assert "\n" not in str(err)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=3))
def test_arbitrary_overrides_raise_only_config_error(overrides: list[str]) -> None:
    """Any override strings either apply or raise ConfigError."""
    try:
        load_config(None, overrides)
    except ConfigError as err:
        assert "\n" not in str(err)

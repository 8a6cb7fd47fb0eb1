"""Typed run configuration: load, validate, override, compare and serialise.

Contract:
- A Config is five frozen dataclasses (model, train, data, sample, notify) whose key names are
  fixed. Every field's metadata holds ``help`` (one line, also the comment in config.toml),
  ``hot`` (True: applies at the next training step; False: needs a fresh model/data), and its
  rules (bounds ``ge``/``gt``/``le``/``lt``, ``choices`` where "x:N" means x: and digits,
  ``nonempty``, ``web``: an http(s) address or "").
- Every change goes through ``config_from_dict`` / ``apply_values``, which validate the whole
  config (cross-field checks included) and return a new Config.
- load_config reads a TOML file (default ./config.toml, else the defaults), then applies
  "section.key=value" overrides whose values are TOML, or raw text when not valid TOML.
- The public functions raise only ConfigError, whatever the input; its message is one line
  naming the dotted key and what to do, prefixed "SOURCE:LINE: " when the line is known
  (or 'override "..."': when an override set the bad value).
"""

import dataclasses
import difflib
import json
import math
import operator
import os
import re
import reprlib
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


from minigpt.config_text import key_line, toml_value
from minigpt.errors import ConfigError

_DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
_DTYPES = ("auto", "float32", "bfloat16", "float16")
_SWITCHES = ("auto", "true", "false")
_OPTIMIZERS = ("adamw", "muon")
_TOKENIZERS = ("cl100k_base", "char", "byte")
_BODIES = ("json", "text")
_ACTIVATIONS = ("relu", "relu2", "gelu")
_POSITIONS = ("learned", "rotary")


def _hot(default: Any, help: str, **rules: Any) -> Any:
    """A field whose change applies at the next training step; rules are ge/gt/le/lt/choices."""
    return field(default=default, metadata={"help": help, "hot": True, **rules})


def _restart(default: Any, help: str, **rules: Any) -> Any:
    """A field whose change needs a fresh model or data; rules as for _hot."""
    return field(default=default, metadata={"help": help, "hot": False, **rules})


@dataclass(frozen=True)
class ModelConfig:
    """Transformer shape; any change needs a fresh model."""

    context_length: int = _restart(64, "tokens the model sees at once (its context window)", ge=1)
    d_model: int = _restart(128, "width of each token's vector (embedding size)", ge=1)
    num_heads: int = _restart(4, "attention heads per block; must divide d_model", ge=1)
    num_blocks: int = _restart(4, "transformer blocks stacked on top of each other", ge=1)
    dropout: float = _restart(0.0, "share of activations zeroed in training (0 = off)", ge=0, lt=1)
    activation: str = _restart(
        "relu", "feed-forward activation: relu, relu2 (squared) or gelu", choices=_ACTIVATIONS
    )
    position: str = _restart(
        "rotary",
        "how tokens know their place: rotary (RoPE) or learned (the lesson's table)",
        choices=_POSITIONS,
    )
    qk_norm: bool = _restart(
        True, "layer-normalise each head's queries and keys before attention (the lesson: off)"
    )
    logit_softcap: float = _restart(
        0.0, "squash logits into (-cap, cap) with cap * tanh(logits / cap) (0 = off)", ge=0
    )
    residual_scalars: bool = _restart(
        False, "before each block, learned weights mix the stream with the embeddings"
    )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; all but optimizer, seed, device, dtype and compile apply at the
    next step."""

    batch_size: int = _hot(12, "sequences per micro-batch", ge=1)
    optimizer: str = _restart(
        "muon", "muon (the blocks' matrices; AdamW the rest) or adamw", choices=_OPTIMIZERS
    )
    learning_rate: float = _hot(1e-3, "peak learning rate (AdamW's), reached after warmup", gt=0)
    muon_learning_rate: float = _hot(0.015, "peak learning rate of Muon's matrices", gt=0)
    max_iters: int = _hot(2000, "optimiser steps to train for", ge=0)
    eval_interval: int = _hot(100, "steps between train/validation loss estimates", ge=1)
    eval_iters: int = _hot(20, "batches averaged per loss estimate", ge=1)
    warmup_iters: int = _hot(100, "steps of linear learning-rate warmup (0 = none)", ge=0)
    min_lr: float = _hot(1e-4, "learning rate at the end of the cosine decay", ge=0)
    weight_decay: float = _hot(0.1, "AdamW weight decay of weight matrices (0 = off)", ge=0)
    grad_clip: float = _hot(1.0, "largest allowed gradient norm (0 = no clipping)", ge=0)
    ema_decay: float = _hot(
        0.99,
        "evals and samples use an average of the weights keeping this much (0 = off)",
        ge=0,
        lt=1,
    )
    grad_accum_steps: int = _hot(1, "micro-batches summed per optimiser step", ge=1)
    checkpoint_interval: int = _hot(200, "steps between checkpoints", ge=1)
    seed: int = _restart(1337, "random seed for weights, batches and samples", ge=0, lt=2**64)
    device: str = _restart(
        "auto", "where to train: auto, cpu, cuda, cuda:N or mps", choices=_DEVICES
    )
    dtype: str = _restart(
        "auto", "number format: auto, float32, bfloat16 or float16", choices=_DTYPES
    )
    compile: str = _restart(
        "auto",
        "torch.compile: auto (CUDA only), true or false; slow first step",
        choices=_SWITCHES,
    )
    threads: int = _hot(0, "CPU threads torch may use (0 = auto)", ge=0)
    learned_views: bool = _hot(True, "at each eval, measure what the model learned (the w view)")


@dataclass(frozen=True)
class DataConfig:
    """Corpus and tokenizer; any change needs fresh data and model."""

    path: str = _restart(
        "builtin:python-stdlib",
        "a .txt/.md/.csv file or folder of them, builtin:python-stdlib or builtin:python-docs",
        nonempty=True,
    )
    tokenizer: str = _restart(
        "cl100k_base", "how text becomes tokens: cl100k_base, char or byte", choices=_TOKENIZERS
    )
    compact_vocab: bool = _restart(True, "keep only the tokens the corpus uses often")
    train_split: float = _restart(
        0.9, "share of the corpus trained on; the rest validates", gt=0, lt=1
    )


@dataclass(frozen=True)
class SampleConfig:
    """Text generation settings; all apply at the next sample."""

    prompt: str = _hot("The for statement", "text each sample starts from")
    max_new_tokens: int = _hot(200, "tokens generated per sample", ge=1)
    temperature: float = _hot(1.0, "randomness of sampling (0 = always the likeliest)", ge=0)
    top_k: int = _hot(0, "sample only from the k likeliest tokens (0 = off)", ge=0)
    top_p: float = _hot(
        1.0, "keep the likeliest tokens whose chances sum to p (1 = off)", gt=0, le=1
    )
    at_eval: bool = _hot(True, "at each eval, sample the prompt with seed train.seed")


@dataclass(frozen=True)
class NotifyConfig:
    """What the engine tells you of, and where (minigpt/service/notices.py); all apply at once."""

    url: str = _hot("", 'webhook each notice is POSTed to, http(s)://... ("" = none)', web=True)
    body: str = _hot(
        "json",
        "json (kind, title, message...) or text (ntfy.sh: title as a header)",
        choices=_BODIES,
    )
    on_finish: bool = _hot(True, "notify when training finishes or fails")
    on_alert: bool = _hot(True, "notify of each alert (a diverged loss has on_diverge)")
    on_diverge: bool = _hot(True, "notify when the loss diverges (NaN) and training stops")
    stall_after: float = _hot(
        10.0, "notify when a step takes this many times longer than usual (0 = off)", ge=0
    )
    val_loss_target: float = _hot(
        0.0, "notify when the val loss first reaches this (0 = off)", ge=0
    )
    terminal: bool = _hot(True, "attached dashboards ring the bell and notify the desktop")


@dataclass(frozen=True)
class Config:
    """A whole run's configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)


_SECTIONS: dict[str, type] = {f.name: cast(type, f.type) for f in dataclasses.fields(Config)}
_FIELDS: dict[str, dict[str, dataclasses.Field[Any]]] = {
    name: {f.name: f for f in dataclasses.fields(cls)} for name, cls in _SECTIONS.items()
}
# Per field type: how messages name it, and the exact value types accepted. bool is an int
# subclass and an integral float is not an int, so both are checked by exact type.
_KINDS = {
    int: ("an integer", (int,)),
    float: ("a number", (int, float)),
    str: ("a string", (str,)),
    bool: ("true or false", (bool,)),
}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _ValidationError(Exception):
    """Internal: a validation failure at a dotted key, located later by the caller."""

    def __init__(self, key: str, message: str, related: Sequence[str] = ()) -> None:
        super().__init__(f"{key}: {message}")
        self.keys = (key, *related)


def _name(key: object) -> str:
    """A key as shown in messages; odd keys are quoted so the message stays one line."""
    return key if isinstance(key, str) and _BARE_KEY.fullmatch(key) else json.dumps(str(key))


def _show(value: object) -> str:
    """A value as shown in messages: TOML-like, one line, bounded length."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    else:  # reprlib bounds the size and depth of nested lists and tables
        text = reprlib.repr(value).replace("\n", "\\n")
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(section: object, key: object | None = None) -> str:
    """A did-you-mean hint: the same section's keys first, then keys of other sections."""
    if key is None:
        close = difflib.get_close_matches(str(section), _SECTIONS, n=1)
        if close:
            return f" (did you mean [{close[0]}]?)"
        key, others = section, list(_SECTIONS)  # a key written outside its section
    else:
        close = difflib.get_close_matches(str(key), _FIELDS[str(section)], n=1)
        if close:
            return f" (did you mean {section}.{close[0]}?)"
        others = [s for s in _SECTIONS if s != section]
    by_key = {k: f"{s}.{k}" for s in others for k in _FIELDS[s]}
    close = difflib.get_close_matches(str(key), by_key, n=1)
    if close:
        return f" (did you mean {by_key[close[0]]}?)"
    known = _FIELDS[str(section)] if len(others) < len(_SECTIONS) else _SECTIONS
    return (
        f" (expected one of: {', '.join(known)}; if the file is from a newer minigpt, "
        "remove the key or upgrade)"
    )


_BOUNDS = {
    "ge": (">=", operator.ge),
    "gt": (">", operator.gt),
    "le": ("<=", operator.le),
    "lt": ("<", operator.lt),
}


def _range_text(meta: Mapping[str, Any]) -> str:
    """The allowed range of a numeric field, as in "must be >= 0 and < 1"."""
    return "must be " + " and ".join(
        f"{sign} {meta[r]}" for r, (sign, _) in _BOUNDS.items() if r in meta
    )


def _in_range(value: float, meta: Mapping[str, Any]) -> bool:
    """Whether value satisfies the field's bounds; NaN satisfies none."""
    return all(test(value, meta[r]) for r, (_, test) in _BOUNDS.items() if r in meta)


def _is_choice(value: str, choices: Sequence[str]) -> bool:
    """Whether value is one of choices, where "x:N" stands for x: followed by digits."""
    return any(
        value == c or (c.endswith(":N") and re.fullmatch(re.escape(c[:-1]) + r"\d+", value))
        for c in choices
    )


def _finite(value: float | int) -> bool:
    """Whether a number is finite as a float (an int past float's range is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_web_address(value: str) -> bool:
    """Whether value is an http:// or https:// address with a host (and a valid port)."""
    if any(c.isspace() or not c.isprintable() for c in value):
        return False
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:  # e.g. "http://[::1" or "http://host:port"
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_value(dotted: str, f: dataclasses.Field[Any], value: Any) -> object:
    """Type-check one value (ints widen to floats) and apply its range/choice rules."""
    meta, (expected, accepted) = f.metadata, _KINDS[cast(type, f.type)]
    if meta.get("choices") == _SWITCHES:
        expected = "auto, true or false"
        if type(value) is bool:
            value = str(value).lower()  # compile = true, as configs wrote it before "auto"
    if type(value) not in accepted:
        got = f"{_show(value)} ({type(value).__name__})"
        raise _ValidationError(dotted, f"expected {expected}, got {got}")
    if f.type is float and not _finite(value):
        raise _ValidationError(dotted, f"expected a finite number, got {_show(value)}")
    if not _in_range(value, meta):
        raise _ValidationError(dotted, f"{_range_text(meta)}, got {_show(value)}")
    if f.type is float:
        value = float(value)
    if "choices" in meta and not _is_choice(value, meta["choices"]):
        raise _ValidationError(
            dotted, f"must be one of {', '.join(meta['choices'])}; got {_show(value)}"
        )
    if meta.get("nonempty") and not value.strip():
        raise _ValidationError(dotted, "must not be empty")
    if meta.get("web") and value and not _is_web_address(value):
        message = f'must be an http:// or https:// address, or "" for none; got {_show(value)}'
        raise _ValidationError(dotted, message)
    return value


def _validate(data: object) -> Config:
    """Build a Config from a nested mapping, raising _ValidationError at the first bad key."""
    if not isinstance(data, Mapping):
        raise _ValidationError("config", f"expected a table of sections, got {_show(data)}")
    sections: dict[str, dict[str, object]] = {name: {} for name in _SECTIONS}
    for section, table in data.items():
        if section not in _SECTIONS:
            home = [name for name, keys in _FIELDS.items() if section in keys]
            if home and not isinstance(table, Mapping):
                message = f"set outside any section; it belongs under [{home[0]}]"
                raise _ValidationError(_name(section), message)
            raise _ValidationError(_name(section), "unknown section" + _suggest(section))
        if not isinstance(table, Mapping):
            got = f"{_show(table)} ({type(table).__name__})"
            raise _ValidationError(section, f"expected a table ([{section}]), got {got}")
        for key, value in table.items():
            dotted = f"{section}.{_name(key)}"
            if key not in _FIELDS[section]:
                raise _ValidationError(dotted, "unknown key" + _suggest(section, key))
            sections[section][key] = _check_value(dotted, _FIELDS[section][key], value)
    config = Config(**{name: _SECTIONS[name](**values) for name, values in sections.items()})
    model, train = config.model, config.train
    if model.d_model % model.num_heads:
        raise _ValidationError(
            "model.num_heads",
            f"{model.num_heads} does not divide model.d_model = {model.d_model}; "
            "choose a head count that divides d_model",
            ["model.d_model"],
        )
    if model.position == "rotary" and (model.d_model // model.num_heads) % 2:
        raise _ValidationError(
            "model.position",
            f"rotary needs an even head size, and model.d_model / model.num_heads = "
            f"{model.d_model // model.num_heads}; choose a head count that leaves it even",
            ["model.num_heads", "model.d_model"],
        )
    if train.min_lr > train.learning_rate:
        raise _ValidationError(
            "train.min_lr",
            f"must not exceed train.learning_rate ({train.min_lr:g} > {train.learning_rate:g}); "
            "lower train.min_lr or raise train.learning_rate",
            ["train.learning_rate"],
        )
    return config


def _locate(
    problem: _ValidationError,
    source: str | None,
    text: str | None,
    overrides: Mapping[str, str] | None = None,
) -> ConfigError:
    """Turn a _ValidationError into a ConfigError prefixed with where the bad value came from."""
    for key in problem.keys:
        if overrides and key in overrides:
            return ConfigError(f"override {_show(overrides[key])}: {problem}")
    if source is None:
        return ConfigError(str(problem))
    for key in problem.keys:
        line = None if text is None else key_line(text, key)
        if line is not None:
            return ConfigError(f"{source}:{line}: {problem}", line=line)
    return ConfigError(f"{source}: {problem}")


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    """tomllib.loads with its errors turned into one-line ConfigErrors."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err).split("\n")[0]
        match = re.fullmatch(r"(.*) \(at (?:line (\d+), column (\d+)|end of document)\)", message)
        if not match:
            raise ConfigError(f"{source}: {message}") from None
        what, line, column = match.groups()
        if line is None:  # "end of document": point at the position after the last character
            lines = text.split("\n")
            line, column = len(lines), len(lines[-1]) + 1
        raise ConfigError(
            f"{source}: line {line}, column {column}: {what}", line=int(line), column=int(column)
        ) from None
    except ValueError:  # Python's limit on digits in an int literal (4300 by default)
        raise ConfigError(f"{source}: a number has too many digits") from None
    except RecursionError:
        raise ConfigError(f"{source}: arrays or tables nested too deeply") from None


def parse_config_values(text: str, source: str = "<toml>") -> dict[str, object]:
    """A TOML fragment such as "[train]\\nlearning_rate = 3e-4" as {dotted key: value}."""
    values: dict[str, object] = {}
    for section, table in _parse_toml(text, source).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: {_name(section)}: expected a [section] of keys")
        values |= {f"{section}.{key}": value for key, value in table.items()}
    return values


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse TOML text and validate it; missing sections and keys take their defaults."""
    return config_from_dict(_parse_toml(text, source), source, text)


def config_from_dict(
    d: Mapping[str, Any], source: str = "<config>", text: str | None = None
) -> Config:
    """Validate a nested {section: {key: value}} mapping; `text` lets errors name the line."""
    try:
        return _validate(d)
    except _ValidationError as problem:
        raise _locate(problem, source, text) from None


def _parse_override(override: object) -> tuple[str, str, object]:
    """Split "section.key=value" and parse the value as TOML, else keep it as a raw string."""
    if not isinstance(override, str) or "=" not in override:
        raise ConfigError(f"override {_show(override)}: expected section.key=value")
    name, raw = (part.strip() for part in override.split("=", 1))
    section, dot, key = (part.strip() for part in name.partition("."))
    if not (dot and section and key):
        raise ConfigError(f"override {_show(override)}: expected section.key=value")
    try:
        # A line break would let the value smuggle in further TOML lines.
        value = raw if "\n" in raw else tomllib.loads(f"value = {raw}")["value"]
    except (ValueError, RecursionError):  # not a TOML value, so the user meant a plain string
        value = raw
    f = _FIELDS.get(section, {}).get(key)
    if f is not None and f.type is str and not isinstance(value, str):
        value = raw  # e.g. sample.prompt=42 means the text "42"
    return section, key, value


def parse_overrides(overrides: Sequence[str]) -> dict[str, object]:
    """Override strings ("section.key=value") as {dotted key: value}, parsed as load_config does."""
    return {f"{s}.{k}": v for s, k, v in map(_parse_override, overrides)}


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: Sequence[str] = ()
) -> Config:
    """Load a TOML file (default: ./config.toml if present) and apply "section.key=value"s."""
    if path is None and not Path("config.toml").is_file():
        source, text, data = None, None, {}
    else:
        file = Path("config.toml" if path is None else path)
        source = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{source}: config file not found") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{source}: not UTF-8 text; save it as UTF-8") from None
        except (OSError, ValueError) as err:  # a directory, no permission, a NUL in the path
            raise ConfigError(
                f"{source}: cannot read: {getattr(err, 'strerror', None) or err}"
            ) from None
        data = _parse_toml(text, source)
    from_override: dict[str, str] = {}
    for override in overrides:
        section, key, value = _parse_override(override)
        table = data.setdefault(section, {})
        if isinstance(table, dict):  # otherwise validation reports the file's broken section
            table[key] = value
            from_override[f"{section}.{_name(key)}"] = override
            from_override.setdefault(_name(section), override)
    try:
        return _validate(data)
    except _ValidationError as problem:
        raise _locate(problem, source, text, from_override) from None


def config_to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The config as a nested plain dict, sections and keys in declaration order."""
    return {
        name: {key: getattr(getattr(config, name), key) for key in _FIELDS[name]}
        for name in _SECTIONS
    }


_COMMENT_COLUMN = 31  # where each key's help comment starts, as in the shipped config.toml


def config_to_toml(config: Config, header: str = "") -> str:
    """The config as commented TOML (each key's help as its comment) that parses back equal."""
    parts = [header] if header else []
    for section, table in config_to_dict(config).items():
        lines = [f"[{section}]"]
        for key, value in table.items():
            assignment = f"{key} = {toml_value(value)}"
            help = _FIELDS[section][key].metadata["help"]
            lines.append(f"{assignment.ljust(_COMMENT_COLUMN - 1)} # {help}")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def apply_values(config: Config, values: Mapping[str, object]) -> Config:
    """A new Config with dotted keys set to new values, validated as a whole."""
    data = config_to_dict(config)
    for dotted, value in values.items():
        section, dot, key = str(dotted).partition(".")
        if not (dot and section and key):
            raise ConfigError(f"{_name(dotted)}: expected a dotted key like train.learning_rate")
        data.setdefault(section, {})[key] = value  # validation reports unknown names
    try:
        return _validate(data)
    except _ValidationError as problem:
        raise _locate(problem, None, None) from None


def all_keys() -> list[str]:
    """Every dotted key, sections and keys in declaration order."""
    return [f"{section}.{key}" for section, fields in _FIELDS.items() for key in fields]


def _field(dotted_key: str) -> dataclasses.Field[Any]:
    """The dataclass field of a dotted key, or ConfigError naming the nearest real key."""
    section, _, key = str(dotted_key).partition(".")
    if section not in _FIELDS:
        raise ConfigError(f"{_name(section)}: unknown section{_suggest(section)}")
    if key not in _FIELDS[section]:
        raise ConfigError(f"{section}.{_name(key)}: unknown key{_suggest(section, key)}")
    return _FIELDS[section][key]


def is_hot(dotted_key: str) -> bool:
    """Whether a change to this key applies at the next step without a restart."""
    return _field(dotted_key).metadata["hot"]


def help_text(dotted_key: str) -> str:
    """The one-line help of a key, as used for its comment in config.toml."""
    return _field(dotted_key).metadata["help"]


def flat_values(config: Config) -> dict[str, Any]:
    """The config as {dotted key: value}."""
    return {f"{s}.{k}": v for s, table in config_to_dict(config).items() for k, v in table.items()}


def changed_keys(old: Config, new: Config) -> list[str]:
    """Dotted keys whose values differ between two configs, in declaration order."""
    before, after = flat_values(old), flat_values(new)
    return [key for key in before if before[key] != after[key]]


def changes(old: Config, new: Config) -> dict[str, list[Any]]:
    """{dotted key: [old value, new value]} for each key whose value differs."""
    before, after = flat_values(old), flat_values(new)
    return {key: [before[key], after[key]] for key in changed_keys(old, new)}


def restart_keys(old: Config, new: Config) -> list[str]:
    """The changed keys that need a fresh model or data (i.e. are not hot)."""
    return [key for key in changed_keys(old, new) if not is_hot(key)]

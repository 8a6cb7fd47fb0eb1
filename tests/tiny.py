"""The tests' one tiny config: a char model of one small block that trains in seconds on CPU.

Every test that needs a config builds it here, adding on top the values it relies on
(`ENGINE` for the engines of tests/conftest.py's config_file, tests/minigpt/conftest.py's
`TRAINS` for in-process training), so no test's model or data size changes unseen.
"""

from __future__ import annotations

import os
from pathlib import Path

from minigpt.config import Config, ModelConfig, apply_values
from minigpt.config_text import toml_value

# torch threads for every config the tests write (train.threads). One thread is the
# plain `make test`; `make test-numerics` reruns the `trains` tests with 2, whose sums
# split differently and so round differently.
THREADS = int(os.environ.get("MINIGPT_TEST_THREADS", "1"))

TINY: dict[str, object] = {
    "model.context_length": 16,
    "model.d_model": 32,
    "model.num_heads": 2,
    "model.num_blocks": 1,
    "model.dropout": 0.1,
    "train.batch_size": 4,
    "train.eval_iters": 2,
    "train.threads": THREADS,
    "data.tokenizer": "char",
    "sample.at_eval": False,  # tests that want samples at evals ask for them
    "train.learned_views": False,  # likewise the learned views (tests/minigpt/learned/)
}
# The engines tests start on config_file: they run until stopped, checkpointing often.
ENGINE: dict[str, object] = {
    "train.max_iters": 100_000,
    "train.eval_interval": 25,
    "train.checkpoint_interval": 10,
}


def tiny_config(corpus: Path | None = None, /, **values: object) -> Config:
    """TINY on corpus (default: the builtin one), with values overriding dotted keys."""
    path = {} if corpus is None else {"data.path": str(corpus)}
    return apply_values(Config(), TINY | path | values)


def tiny_overrides(**values: object) -> list[str]:
    """TINY with values on top as "section.key=value" overrides, for --set or an engine."""
    return [f"{key}={toml_value(value)}" for key, value in (TINY | values).items()]


def lessons_model(
    *, context_length: int, d_model: int, num_heads: int, num_blocks: int
) -> ModelConfig:
    """A dropout-free model of this shape as the lesson builds it: learned positions and
    plain attention, whatever [model]'s defaults (for tests of the position table)."""
    return ModelConfig(
        context_length=context_length,
        d_model=d_model,
        num_heads=num_heads,
        num_blocks=num_blocks,
        dropout=0.0,
        position="learned",
        qk_norm=False,
    )

"""minigpt: the GPT of the lesson, trained and sampled from Python.

The engine behind the minigpt-tui dashboard, usable on its own:

    from minigpt import Run, load_config
    run = Run.start(load_config(overrides=["train.max_iters=300"]), "runs/t")
    while not run.done:
        run.advance()

Names are imported on first use, so a process that only talks to an engine
(`minigpt.service.client`, the dashboard) never loads torch. It never imports
textual, rich or plotext.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Client": "minigpt.service.client",
    "Completion": "minigpt.sampling",
    "Config": "minigpt.config",
    "ConfigError": "minigpt.errors",
    "CheckpointError": "minigpt.errors",
    "Corpus": "minigpt.batches",
    "DataError": "minigpt.errors",
    "EngineError": "minigpt.errors",
    "MiniGPTError": "minigpt.errors",
    "Model": "minigpt.model",
    "Run": "minigpt.service.run",
    "TokenizerError": "minigpt.errors",
    "Trainer": "minigpt.train",
    "apply_values": "minigpt.config",
    "get_batch": "minigpt.batches",
    "load_config": "minigpt.config",
    "prepare_data": "minigpt.batches",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    if name not in _HOMES:
        raise AttributeError(f"module 'minigpt' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)

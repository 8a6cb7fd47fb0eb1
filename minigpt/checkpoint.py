"""Checkpoint files: written atomically, read back safely.

A checkpoint is a dict of plain Python values and tensors (weights, optimizer
state, step, best val loss, the resolved config, the tokenizer state and every
random state), so `torch.load(weights_only=True)` reads it and a checkpoint
file can never run code. Writing goes through `minigpt.atomic` (a temporary
file, fsynced, renamed over the old one, the folder fsynced): a crash or a full
disk mid-write leaves the previous checkpoint intact.

A checkpoint's config is read back by `saved_config`: a key the checkpoint predates
takes the value training had before the key existed (PREDATED), not today's default,
so an old model loads as the model it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from minigpt.atomic import write_atomic
from minigpt.config import Config, ModelConfig, config_from_dict
from minigpt.errors import CheckpointError
from minigpt.model import Model
from minigpt.tokenizer import Tokenizer, tokenizer_from_state

FORMAT_VERSION = 1
REQUIRED_KEYS = ("version", "model", "config", "tokenizer", "step")
# What a run had before each of these keys existed: AdamW alone trained it, and the
# model was the lesson's (none of the speedrun's switches).
PREDATED: dict[str, dict[str, object]] = {
    "train": {"optimizer": "adamw"},
    "model": {
        "activation": "relu",
        "position": "learned",
        "qk_norm": False,
        "logit_softcap": 0.0,
        "residual_scalars": False,
    },
}


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write payload to path atomically and durably (see minigpt.atomic)."""
    path, state = Path(path), {"version": FORMAT_VERSION, **payload}
    try:
        write_atomic(path, lambda f: torch.save(state, f), durable=True)
    except (OSError, RuntimeError) as error:  # torch.save reports a failed write as RuntimeError
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise CheckpointError(
            f"could not write {path}: {reason}; the previous checkpoint is intact"
        ) from None


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint onto the CPU, refusing anything that is not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a damaged file
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or damaged?): {first_line[:200]}"
        ) from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise CheckpointError(f"{path} is not a minigpt checkpoint (keys missing)")
    version = state["version"]
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path} is in checkpoint format {version!r}, {_which(version)}")
    return state


def saved_config(state: dict[str, Any], source: str | os.PathLike[str]) -> Config:
    """A checkpoint's config, validated (ConfigError naming `source`), with PREDATED's values
    for the keys it lacks; a section it lacks altogether takes the defaults."""
    saved = state["config"]
    if isinstance(saved, dict):
        saved = saved | {
            section: PREDATED[section] | saved[section]
            for section in PREDATED
            if isinstance(saved.get(section), dict)
        }
    return config_from_dict(saved, source=str(source))


def evaluated_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The weights a checkpoint's evals measured, for sampling and inspecting: the running
    average of the weights when training kept one (train.ema_decay), else the weights."""
    return state.get("average", state["model"])


def evaluated_model(
    state: dict[str, Any], config: ModelConfig, source: str | os.PathLike[str]
) -> tuple[Tokenizer, Model]:
    """A checkpoint's tokenizer and its model on the CPU with the weights evals measured
    (evaluated_weights): what sampling, inspecting and exporting use. `source` names the
    checkpoint in the error raised when the weights do not fit config."""
    tokenizer = tokenizer_from_state(state["tokenizer"])
    model = Model(config, tokenizer.vocab_size)
    try:
        model.load_state_dict(evaluated_weights(state))
    except RuntimeError as error:
        reason = str(error).splitlines()[0]
        raise CheckpointError(f"{source} does not fit its own config: {reason}") from None
    return tokenizer, model


def _which(version: object) -> str:
    """Why a checkpoint of another format version cannot be read here, naming both."""
    ours = f"this minigpt reads format {FORMAT_VERSION}"
    if not isinstance(version, int) or isinstance(version, bool):
        return f"which is no minigpt format; {ours}"
    if version > FORMAT_VERSION:
        return f"written by a newer minigpt; {ours}: upgrade minigpt to use it"
    return f"written by an older minigpt; {ours}"

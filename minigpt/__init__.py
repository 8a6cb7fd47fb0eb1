"""minigpt: the GPT of the lesson, trained and sampled from Python.

The engine behind the minigpt-tui dashboard, usable on its own:

    from minigpt import Run, load_config
    run = Run.start(load_config(overrides=["train.max_iters=300"]), "runs/t")
    while not run.done:
        run.advance()

It never imports textual, rich or plotext.
"""

from minigpt.config import Config, apply_values, load_config
from minigpt.data import Corpus, get_batch, prepare_data
from minigpt.errors import CheckpointError, ConfigError, DataError, MiniGPTError, TokenizerError
from minigpt.model import Model
from minigpt.run import Run
from minigpt.sampling import sample_text
from minigpt.train import Trainer

__all__ = [
    "CheckpointError",
    "Config",
    "ConfigError",
    "Corpus",
    "DataError",
    "MiniGPTError",
    "Model",
    "Run",
    "TokenizerError",
    "Trainer",
    "apply_values",
    "get_batch",
    "load_config",
    "prepare_data",
    "sample_text",
]

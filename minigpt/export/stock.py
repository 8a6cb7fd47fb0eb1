"""Which stock transformers class holds a minigpt model, exactly, or why none does.

A stock class is one transformers ships, so an export loads with
`AutoModelForCausalLM.from_pretrained` alone, no remote code. model.position and
model.qk_norm pick it: learned positions are GPT-2's (gpt2.py), rotary ones GPT-NeoX's
(gpt_neox.py), or Persimmon's with qk_norm (persimmon.py); each takes every
model.activation. GPT-2 has no place for qk_norm, and the other switches of [model]
(NO_STOCK_CLASS) change the network in ways no class has a setting for, so a model with
any of them on has no stock form and is refused.

Contract: `stock_class(model)` returns the module that maps the model, a StockClass, or
raises ExportError naming the first switch no stock class holds, in one line.
"""

from __future__ import annotations

from typing import Protocol

import torch

from minigpt.config import ModelConfig
from minigpt.config_text import toml_value
from minigpt.errors import ExportError
from minigpt.export import gpt2, gpt_neox, persimmon
from minigpt.model import Model

# The [model] switches no stock class has a place for, at the one value they hold.
NO_STOCK_CLASS: dict[str, object] = {
    "logit_softcap": 0.0,
    "residual_scalars": False,
}


class StockClass(Protocol):
    """What gpt2.py, gpt_neox.py and persimmon.py each define: a transformers class and a
    Model's way in."""

    CLASS: str  # the model's class, as config.json's "architectures" names it
    MODEL_TYPE: str  # its config's model_type (AutoConfig.for_model's key)
    NETWORK: str  # the network, in the model card's words

    def weights(self, model: Model) -> dict[str, torch.Tensor]:
        """The model's weights under the class's names."""
        ...

    def config(self, model: Model) -> dict[str, object]:
        """The class's config arguments for the model's shape."""
        ...


# (model.position, model.qk_norm) -> the stock class with the same positions and norms.
BY_SHAPE: dict[tuple[str, bool], StockClass] = {
    ("learned", False): gpt2,
    ("rotary", False): gpt_neox,
    ("rotary", True): persimmon,
}


def stock_class(model: ModelConfig) -> StockClass:
    """The stock class that holds this model; ExportError naming the switch if none does."""
    for key, holds in NO_STOCK_CLASS.items():
        if (value := getattr(model, key)) != holds:
            raise ExportError(
                f"model.{key} = {toml_value(value)}: no stock transformers class has a place "
                f"for it (they hold {toml_value(holds)} only); export a model trained without it"
            )
    if (model.position, model.qk_norm) not in BY_SHAPE:
        raise ExportError(
            f'model.qk_norm = true with model.position = "{model.position}": no stock '
            "transformers class has a place for it (Persimmon holds qk_norm with rotary "
            "positions); export a model trained without it or with rotary positions"
        )
    return BY_SHAPE[model.position, model.qk_norm]

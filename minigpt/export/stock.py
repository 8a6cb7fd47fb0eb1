"""Which stock transformers class holds a minigpt model, exactly, or why none does.

A stock class is one transformers ships, so an export loads with
`AutoModelForCausalLM.from_pretrained` alone, no remote code. model.position picks it:
learned positions are GPT-2's (gpt2.py), rotary ones GPT-NeoX's (gpt_neox.py); each
takes every model.activation. The other switches of [model] (NO_STOCK_CLASS) change the
network in ways neither class has a setting for, so a model with any of them on has no
stock form and is refused.

Contract: `stock_class(model)` returns the module that maps the model, a StockClass, or
raises ExportError naming the first switch no stock class holds, in one line.
"""

from __future__ import annotations

from typing import Protocol

import torch

from minigpt.config import ModelConfig
from minigpt.config_text import toml_value
from minigpt.errors import ExportError
from minigpt.export import gpt2, gpt_neox
from minigpt.model import Model

# The [model] switches no stock class has a place for, at the one value they hold.
NO_STOCK_CLASS: dict[str, object] = {
    "qk_norm": False,
    "logit_softcap": 0.0,
    "residual_scalars": False,
}


class StockClass(Protocol):
    """What gpt2.py and gpt_neox.py each define: a transformers class and a Model's way in."""

    CLASS: str  # the model's class, as config.json's "architectures" names it
    MODEL_TYPE: str  # its config's model_type (AutoConfig.for_model's key)
    NETWORK: str  # the network, in the model card's words

    def weights(self, model: Model) -> dict[str, torch.Tensor]:
        """The model's weights under the class's names."""
        ...

    def config(self, model: Model) -> dict[str, object]:
        """The class's config arguments for the model's shape."""
        ...


# model.position -> the stock class whose positions are the same.
BY_POSITION: dict[str, StockClass] = {"learned": gpt2, "rotary": gpt_neox}


def stock_class(model: ModelConfig) -> StockClass:
    """The stock class that holds this model; ExportError naming the switch if none does."""
    for key, holds in NO_STOCK_CLASS.items():
        if (value := getattr(model, key)) != holds:
            raise ExportError(
                f"model.{key} = {toml_value(value)}: no stock transformers class has a place "
                f"for it (GPT-2 and GPT-NeoX hold {toml_value(holds)} only); export a model "
                "trained without it"
            )
    return BY_POSITION[model.position]

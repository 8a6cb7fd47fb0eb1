"""A rotary model with model.qk_norm as transformers' `PersimmonForCausalLM`: weights and config.

Persimmon is GPT-NeoX's network (gpt_neox.py) with two of its choices fixed the way
minigpt makes them (blocks in sequence, the output layer tied when asked) and one more
that minigpt's qk_norm needs: each head's queries and keys go through a LayerNorm of the
head's size (`qk_layernorm`) before rotary, as in minigpt's MultiHeadAttention. minigpt's
qk_norm has no learned weights, so Persimmon's get ones and zero biases; their eps is
`layer_norm_eps`, which minigpt's qk_norm shares with its other LayerNorms. The rest maps
as for GPT-NeoX, the same tensors under Persimmon's names (the fused q/k/v rows head by
head, zero biases for minigpt's bias-free linear layers). Dropout, which only training
sees, sits elsewhere in Persimmon (after the feed-forward only); inference is the same.

Contract: `weights(model)` and `config(model)` are what `PersimmonForCausalLM` loads and
what `PersimmonConfig` takes; which models come here is decided by stock.py.
"""

from __future__ import annotations

import torch

from minigpt.export import gpt_neox
from minigpt.model import Model

CLASS = "PersimmonForCausalLM"
MODEL_TYPE = "persimmon"
# The network in the model card's words, after "the same network: ".
NETWORK = (
    "rotary positions over the whole head, each head's queries and keys layer-normalised, "
    "pre-norm blocks in sequence, a fused q/k/v projection"
)
# GPT-NeoX's name prefixes -> Persimmon's, first match wins.
RENAMED = (
    ("gpt_neox.embed_in.", "model.embed_tokens."),
    ("gpt_neox.final_layer_norm.", "model.final_layernorm."),
    ("gpt_neox.layers.", "model.layers."),
)


def weights(model: Model) -> dict[str, torch.Tensor]:
    """The model's weights under PersimmonForCausalLM's names (lm_head is embed_tokens)."""
    assert model.config.qk_norm, "Persimmon here holds the models with qk_norm"
    out = {_renamed(name): tensor for name, tensor in gpt_neox.weights(model).items()}
    like = model.ln_final.weight.detach()  # the dtype and device of the model's norms
    head_size = model.config.d_model // model.config.num_heads
    for i in range(len(model.blocks)):
        for norm in ("q_layernorm", "k_layernorm"):
            prefix = f"model.layers.{i}.self_attn.{norm}"
            out[f"{prefix}.weight"] = like.new_ones(head_size)
            out[f"{prefix}.bias"] = like.new_zeros(head_size)
    return out


def _renamed(name: str) -> str:
    """A GPT-NeoX weight's name as Persimmon's."""
    for old, new in RENAMED:
        if name.startswith(old):
            name = new + name.removeprefix(old)
            break
    return name.replace(".attention.", ".self_attn.")


def config(model: Model) -> dict[str, object]:
    """PersimmonConfig's arguments for this model's shape."""
    shared = gpt_neox.config(model)
    unused = {"architectures", "use_parallel_residual"}  # Persimmon's blocks run in sequence
    return {key: value for key, value in shared.items() if key not in unused} | {
        "architectures": [CLASS],
        "qk_layernorm": True,
    }

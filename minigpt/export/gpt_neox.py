"""A model with rotary positions as transformers' `GPTNeoXForCausalLM`: its weights and config.

minigpt's Model with `position = "rotary"` is GPT-NeoX's network with nothing lost, once
three of NeoX's choices are set to minigpt's: the blocks run in sequence, x + attn(ln1(x))
then + mlp(ln2(x)) (`use_parallel_residual = False`; NeoX's default adds both to the same
x); rotary turns the whole head (`partial_rotary_factor = 1.0`; NeoX's default turns a
quarter), with minigpt's base (rotary.py follows NeoX's `rotate_half` convention); and the
output layer is tied to the token embedding (`tie_word_embeddings`). The rest is NeoX's
own: LayerNorms (with minigpt's eps), an ungated 4x feed-forward whose `hidden_act` is
model.activation ("relu", "relu2" and the exact "gelu" are transformers' names), scores
scaled by 1 / sqrt(head size), dropout after the embedding, attention's weights and each
sublayer (`hidden_dropout`, `attention_dropout`). minigpt's linear layers have no
biases: NeoX's get zeros. Both store a weight as (out, in); only the fused q/k/v rows move,
from minigpt's all queries, then all keys, then all values to NeoX's head by head.

Contract: `weights(model)` and `config(model)` are what `GPTNeoXForCausalLM` loads and
what `GPTNeoXConfig` takes; which models come here is decided by stock.py.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from minigpt.model import Block, Model
from minigpt.rotary import ROPE_BASE

CLASS = "GPTNeoXForCausalLM"
MODEL_TYPE = "gpt_neox"
# The network in the model card's words, after "the same network: ".
NETWORK = (
    "rotary positions over the whole head, pre-norm blocks in sequence (not in parallel), "
    "a fused q/k/v projection"
)


def weights(model: Model) -> dict[str, torch.Tensor]:
    """The model's weights under GPTNeoXForCausalLM's names (lm_head is embed_in, not stored)."""
    assert model.lm_head.weight is model.token_embedding.weight, "the export ties the output"
    # The embedding, the final LayerNorm's two and lm_head, then eight a block: anything
    # else (a position table, residual scalars) has no place in GPT-NeoX.
    assert len(model.state_dict()) == 4 + 8 * len(model.blocks), "not GPT-NeoX's network"
    out = {"gpt_neox.embed_in.weight": model.token_embedding.weight}
    out |= _layer_norm("gpt_neox.final_layer_norm", model.ln_final)
    for i, block in enumerate(model.blocks):
        assert isinstance(block, Block)
        layer, attention = f"gpt_neox.layers.{i}", block.attention
        qkv = heads_first(attention.qkv.weight, attention.num_heads)
        out |= _layer_norm(f"{layer}.input_layernorm", block.ln1)
        out |= _linear(f"{layer}.attention.query_key_value", qkv)
        out |= _linear(f"{layer}.attention.dense", attention.proj.weight)
        out |= _layer_norm(f"{layer}.post_attention_layernorm", block.ln2)
        out |= _linear(f"{layer}.mlp.dense_h_to_4h", block.feed_forward.up.weight)
        out |= _linear(f"{layer}.mlp.dense_4h_to_h", block.feed_forward.down.weight)
    return {name: tensor.detach().contiguous() for name, tensor in out.items()}


def heads_first(qkv: torch.Tensor, num_heads: int) -> torch.Tensor:
    """minigpt's fused q/k/v weight (3C, C), its rows (3, nh, hs): every head's query, then
    every key, then every value, as GPT-NeoX's, rows (nh, 3, hs): each head's q, k, v."""
    rows, C = qkv.shape
    by_part = qkv.view(3, num_heads, rows // (3 * num_heads), C)  # (3, nh, hs, C)
    return by_part.transpose(0, 1).reshape(rows, C)  # (nh, 3, hs, C) -> (3C, C)


def config(model: Model) -> dict[str, object]:
    """GPTNeoXConfig's arguments for this model's shape."""
    c = model.config
    return {
        "architectures": [CLASS],
        "vocab_size": model.vocab_size,
        "max_position_embeddings": c.context_length,
        "hidden_size": c.d_model,
        "num_hidden_layers": c.num_blocks,
        "num_attention_heads": c.num_heads,
        "intermediate_size": 4 * c.d_model,
        "hidden_act": c.activation,
        "hidden_dropout": c.dropout,
        "attention_dropout": c.dropout,
        "layer_norm_eps": model.ln_final.eps,
        "use_parallel_residual": False,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": ROPE_BASE,
            "partial_rotary_factor": 1.0,
        },
        "tie_word_embeddings": True,
        # NeoX's defaults name its tokenizer's special ids; minigpt's vocabularies have none.
        "bos_token_id": None,
        "eos_token_id": None,
    }


def _layer_norm(name: str, norm: nn.LayerNorm) -> dict[str, torch.Tensor]:
    """A LayerNorm's weight and bias under name."""
    return {f"{name}.weight": norm.weight, f"{name}.bias": norm.bias}


def _linear(name: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """A bias-free linear layer's weight (out, in) under name, with the zero bias NeoX's has."""
    return {f"{name}.weight": weight, f"{name}.bias": weight.new_zeros(weight.size(0))}

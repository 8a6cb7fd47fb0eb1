"""A model with learned positions as transformers' `GPT2LMHeadModel`: its weights and config.

minigpt's Model with `position = "learned"` is GPT-2's network with nothing lost: learned
position embeddings, pre-norm blocks with LayerNorm, one fused q/k/v projection split q,
k, v in that order, a 4x feed-forward (GPT-2's config takes `activation_function` =
model.activation, whose names, "relu", "relu2" and the exact "gelu", are transformers'
own), a final LayerNorm, and the output layer tied to the token embedding. minigpt's
linear layers have no biases: GPT-2's get zeros. GPT-2's Conv1D stores a weight as
(in, out), nn.Linear as (out, in), so each is transposed.

Contract: `weights(model)` and `config(model)` are what `GPT2LMHeadModel` loads and what
`GPT2Config` takes; which models come here is decided by stock.py.
"""

from __future__ import annotations

import re

import torch

from minigpt.model import Model

CLASS = "GPT2LMHeadModel"
MODEL_TYPE = "gpt2"
# The network in the model card's words, after "the same network: ".
NETWORK = "learned positions, pre-norm blocks, a fused q/k/v projection"
# minigpt's parameter names -> GPT-2's (a block's parameters under transformer.h.N).
NAMES = {
    "token_embedding": "transformer.wte",
    "position_embedding": "transformer.wpe",
    "ln_final": "transformer.ln_f",
}
BLOCK_NAMES = {"ln1": "ln_1", "ln2": "ln_2"}
# nn.Linear (no bias) -> Conv1D (with a bias).
LINEARS = {
    "attention.qkv": "attn.c_attn",
    "attention.proj": "attn.c_proj",
    "feed_forward.up": "mlp.c_fc",
    "feed_forward.down": "mlp.c_proj",
}
_BLOCK = re.compile(r"blocks\.(\d+)\.(.+)\.(weight|bias)")


def weights(model: Model) -> dict[str, torch.Tensor]:
    """The model's weights under GPT2LMHeadModel's names (lm_head is wte, so not stored)."""
    assert model.lm_head.weight is model.token_embedding.weight, "GPT-2 ties its output layer"
    out = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        block = _BLOCK.fullmatch(name)
        if block is None:
            module, kind = name.rsplit(".", 1)
            assert module in NAMES, f"{name} has no place in GPT-2"
            out[f"{NAMES[module]}.{kind}"] = tensor
            continue
        number, module, kind = block.groups()
        prefix = f"transformer.h.{number}"
        if module in BLOCK_NAMES:
            out[f"{prefix}.{BLOCK_NAMES[module]}.{kind}"] = tensor
            continue
        assert module in LINEARS and kind == "weight", f"{name} has no place in GPT-2"
        out[f"{prefix}.{LINEARS[module]}.weight"] = tensor.t()  # (out, in) -> (in, out)
        out[f"{prefix}.{LINEARS[module]}.bias"] = tensor.new_zeros(tensor.size(0))
    return {name: tensor.detach().contiguous() for name, tensor in out.items()}


def config(model: Model) -> dict[str, object]:
    """GPT2Config's arguments for this model's shape."""
    c = model.config
    return {
        "architectures": [CLASS],
        "vocab_size": model.vocab_size,
        "n_positions": c.context_length,
        "n_embd": c.d_model,
        "n_layer": c.num_blocks,
        "n_head": c.num_heads,
        "n_inner": 4 * c.d_model,
        "activation_function": c.activation,
        "resid_pdrop": c.dropout,
        "embd_pdrop": c.dropout,
        "attn_pdrop": c.dropout,
        "layer_norm_epsilon": model.ln_final.eps,
        "tie_word_embeddings": True,
        # GPT-2's defaults name its own <|endoftext|> id; minigpt's vocabularies have none.
        "bos_token_id": None,
        "eos_token_id": None,
    }

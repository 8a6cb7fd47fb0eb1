"""A checkpoint as a Hugging Face transformers model: `GPT2LMHeadModel`, weights in safetensors.

minigpt's Model is GPT-2's network with nothing lost: learned position embeddings,
pre-norm blocks with LayerNorm, one fused q/k/v projection split q, k, v in that order,
a 4x feed-forward (GPT-2's config takes `activation_function` = model.activation, whose
names, "relu", "relu2" and the exact "gelu", are transformers' own), a final LayerNorm,
and the output layer tied to the token embedding. minigpt's linear layers have no biases:
GPT-2's get zeros. GPT-2's Conv1D stores a weight as (in, out), nn.Linear as (out, in),
so each is transposed. The other switches of [model] (GPT2_HOLDS) have no place in GPT-2:
a model with any of them on is refused.

Contract:
- `export_hf(source, out)` writes the folder out, whole or not at all: model.safetensors,
  config.json, generation_config.json, the tokenizer's files (export_tokenizer.py) and a
  README.md model card (model_card.py), from a run directory's model.ckpt or a checkpoint
  file, with the weights `minigpt sample` uses (checkpoint.evaluated_model). It prints
  nothing, so the dashboard can call it from a worker thread.
- Every problem raises ExportError or CheckpointError and leaves nothing at out: a missing
  package, a taken folder, a bad checkpoint, a model GPT-2 cannot hold or a tokenizer
  with no exact Hugging Face form before anything is written; a folder that cannot be
  written after removing the rest.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import torch

from minigpt.checkpoint import evaluated_model, load_checkpoint, saved_config
from minigpt.config import Config, ModelConfig
from minigpt.config_text import toml_value
from minigpt.errors import ExportError
from minigpt.export.folder import check_destination, needs_extra, write_export
from minigpt.export.model_card import model_card
from minigpt.export.tokenizer import check_exportable, save_hf_tokenizer
from minigpt.model import Model
from minigpt.rundir.layout import RunDir

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
# The [model] switches GPT-2's network has no place for, at the one value it holds.
GPT2_HOLDS: dict[str, object] = {
    "position": "learned",
    "qk_norm": False,
    "logit_softcap": 0.0,
    "residual_scalars": False,
}


def export_hf(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Export a run directory's model.ckpt, or a checkpoint file, as the folder out."""
    folder = check_destination(out)
    safetensors_torch, transformers = needs_extra("safetensors.torch", "transformers")
    source = Path(source)
    ckpt = RunDir(source).model_ckpt if source.is_dir() else source
    state = load_checkpoint(ckpt)
    config = saved_config(state, ckpt)
    check_gpt2(config.model)
    tokenizer, model = evaluated_model(state, config.model, ckpt)
    check_exportable(tokenizer)
    card = model_card(ckpt, state, config, tokenizer)

    def write(temp: Path) -> None:
        """Fill the temporary folder."""
        weights = temp / "model.safetensors"
        safetensors_torch.save_file(gpt2_weights(model), weights, metadata={"format": "pt"})
        transformers.GPT2Config(**gpt2_config(model)).save_pretrained(temp)
        shutil.copymode(temp / "config.json", weights)  # safetensors makes it owner-only
        transformers.GenerationConfig(**generation_settings(config)).save_pretrained(temp)
        save_hf_tokenizer(tokenizer, temp, config.model.context_length)
        (temp / "README.md").write_text(card, encoding="utf-8")

    return write_export(folder, write)


def check_gpt2(model: ModelConfig) -> None:
    """ExportError naming the first switch of [model] that GPT2LMHeadModel cannot hold."""
    for key, holds in GPT2_HOLDS.items():
        if (value := getattr(model, key)) != holds:
            raise ExportError(
                f"model.{key} = {toml_value(value)}: GPT-2 has no place for it (it holds "
                f"{toml_value(holds)} only); export a model trained without it"
            )


def gpt2_weights(model: Model) -> dict[str, torch.Tensor]:
    """The model's weights under GPT2LMHeadModel's names (lm_head is wte, so not stored)."""
    assert model.lm_head.weight is model.token_embedding.weight, "GPT-2 ties its output layer"
    weights = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        block = _BLOCK.fullmatch(name)
        if block is None:
            module, kind = name.rsplit(".", 1)
            assert module in NAMES, f"{name} has no place in GPT-2"
            weights[f"{NAMES[module]}.{kind}"] = tensor
            continue
        number, module, kind = block.groups()
        prefix = f"transformer.h.{number}"
        if module in BLOCK_NAMES:
            weights[f"{prefix}.{BLOCK_NAMES[module]}.{kind}"] = tensor
            continue
        assert module in LINEARS and kind == "weight", f"{name} has no place in GPT-2"
        weights[f"{prefix}.{LINEARS[module]}.weight"] = tensor.t()  # (out, in) -> (in, out)
        weights[f"{prefix}.{LINEARS[module]}.bias"] = tensor.new_zeros(tensor.size(0))
    return {name: tensor.detach().contiguous() for name, tensor in weights.items()}


def gpt2_config(model: Model) -> dict[str, object]:
    """GPT2Config's arguments for this model's shape."""
    c = model.config
    return {
        "architectures": ["GPT2LMHeadModel"],
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


def generation_settings(config: Config) -> dict[str, object]:
    """GenerationConfig's arguments for the run's [sample] settings: the flags that apply
    to the way `minigpt sample` draws, and no others.

    GPT-2 cannot go past its last position, so generation stops at context_length tokens
    in all (max_length) rather than after max_new_tokens, which would fail there. A caller
    who passes max_new_tokens to generate overrides it, and transformers 5 says so.
    """
    s = config.sample
    settings: dict[str, object] = {
        "max_length": config.model.context_length,
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": None,
    }
    if s.temperature == 0:
        # Greedy, as sample_next at temperature 0: top_k and top_p do not apply, and a
        # greedy config that held them would make transformers warn they are unused.
        return settings | {"do_sample": False}
    # top_k 0 and top_p 1 switch those filters off in transformers too, and top_k 0 must be
    # written: unset (or null, to transformers 5) it means 50. generate(do_sample=False)
    # then leaves them unused, quietly since transformers 5.7 (the floor in pyproject.toml).
    return settings | {
        "do_sample": True,
        "temperature": s.temperature,
        "top_k": s.top_k,
        "top_p": s.top_p,
    }

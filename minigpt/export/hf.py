"""A checkpoint as a Hugging Face transformers model of a stock class, weights in safetensors.

The class is the one that computes what minigpt's Model computes, exactly (stock.py):
`GPT2LMHeadModel` for learned positions (gpt2.py), `GPTNeoXForCausalLM` for rotary ones
(gpt_neox.py), `PersimmonForCausalLM` for rotary ones with qk_norm (persimmon.py); a model
with a switch of [model] that none has a place for is refused.

Contract:
- `export_hf(source, out)` writes the folder out, whole or not at all: model.safetensors,
  config.json, generation_config.json, the tokenizer's files (export_tokenizer.py) and a
  README.md model card (model_card.py), from a run directory's model.ckpt or a checkpoint
  file, with the weights `minigpt sample` uses (checkpoint.evaluated_model). It prints
  nothing, so the dashboard can call it from a worker thread.
- Every problem raises ExportError or CheckpointError and leaves nothing at out: a missing
  package, a taken folder, a bad checkpoint, a model no stock class holds or a tokenizer
  with no exact Hugging Face form before anything is written; a folder that cannot be
  written after removing the rest.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from minigpt.checkpoint import evaluated_model, load_checkpoint, saved_config
from minigpt.config import Config
from minigpt.export.folder import check_destination, needs_extra, write_export
from minigpt.export.model_card import model_card
from minigpt.export.stock import stock_class
from minigpt.export.tokenizer import check_exportable, save_hf_tokenizer
from minigpt.rundir.layout import RunDir


def export_hf(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Export a run directory's model.ckpt, or a checkpoint file, as the folder out."""
    folder = check_destination(out)
    safetensors_torch, transformers = needs_extra("safetensors.torch", "transformers")
    source = Path(source)
    ckpt = RunDir(source).model_ckpt if source.is_dir() else source
    state = load_checkpoint(ckpt)
    config = saved_config(state, ckpt)
    stock = stock_class(config.model)
    tokenizer, model = evaluated_model(state, config.model, ckpt)
    check_exportable(tokenizer)
    card = model_card(ckpt, state, config, tokenizer, stock)

    def write(temp: Path) -> None:
        """Fill the temporary folder."""
        weights = temp / "model.safetensors"
        safetensors_torch.save_file(stock.weights(model), weights, metadata={"format": "pt"})
        settings = stock.config(model)
        transformers.AutoConfig.for_model(stock.MODEL_TYPE, **settings).save_pretrained(temp)
        shutil.copymode(temp / "config.json", weights)  # safetensors makes it owner-only
        transformers.GenerationConfig(**generation_settings(config)).save_pretrained(temp)
        save_hf_tokenizer(tokenizer, temp, config.model.context_length)
        (temp / "README.md").write_text(card, encoding="utf-8")

    return write_export(folder, write)


def generation_settings(config: Config) -> dict[str, object]:
    """GenerationConfig's arguments for the run's [sample] settings: the flags that apply
    to the way `minigpt sample` draws, and no others.

    GPT-2 cannot go past its last position, nor was a rotary model trained past it, so
    generation stops at context_length tokens in all (max_length) rather than after
    max_new_tokens, which GPT-2 would fail at and the rotary classes would reach with positions
    minigpt never uses (`minigpt sample` moves its window forward instead). A caller
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

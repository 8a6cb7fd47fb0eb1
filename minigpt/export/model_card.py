"""The README.md of an exported model: what it is, what it learned from, and how well.

An exported folder travels without its run directory, so its card says what the run
directory would: which run and checkpoint, the weights chosen, the data (path, training
tokens, size on disk), the step, the val loss and bits per byte of the last eval at or
before the checkpoint's step (from the run's index, history.sqlite, when the checkpoint sits
in its run directory), the full config but for notify.url (a webhook's address is often its
secret, and a card is made to be shared), how to load it, and what did not come over.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from minigpt.config import Config, apply_values, config_to_toml
from minigpt.config_header import EXPORTED_HEADER
from minigpt.corpus_text import BUILTIN_PREFIX, TEXT_SUFFIXES
from minigpt.display import byte_size, number
from minigpt.events import EvalEvent
from minigpt.export.stock import StockClass
from minigpt.rundir.history_index import HistoryIndex
from minigpt.rundir.layout import RunDir
from minigpt.tokenizer import Tokenizer

# model.activation as a reader knows it.
ACTIVATION_NAMES = {"relu": "ReLU", "relu2": "squared ReLU", "gelu": "GELU"}


def model_card(
    ckpt: Path, state: dict[str, Any], config: Config, tokenizer: Tokenizer, stock: StockClass
) -> str:
    """The card of the model `state`, read from the checkpoint file ckpt, exported as the
    stock class `stock`."""
    c, s, step = config.model, config.sample, int(state["step"])
    prompt = json.dumps(s.prompt, ensure_ascii=False)  # also a Python string literal
    at = last_eval(RunDir(ckpt.parent), step)
    weights = state["model"].items()
    params = sum(tensor.numel() for name, tensor in weights if name != "lm_head.weight")  # tied
    blocks = f"{c.num_blocks} block{'s' * (c.num_blocks > 1)}"
    rows = [
        ("run", f"`{ckpt.parent}`, checkpoint `{ckpt.name}` at step {step:,}"),
        ("weights", _weights(state, config)),
        ("data", _data(config, at)),
        ("tokenizer", f"{tokenizer.kind}, {tokenizer.vocab_size:,} tokens"),
        (
            "model",
            f"{params:,} parameters: {blocks}, d_model {c.d_model}, "
            f"{c.num_heads} heads, context_length {c.context_length}, "
            f"{ACTIVATION_NAMES[c.activation]} feed-forward",
        ),
        ("val loss", _losses(at, state)),
    ]
    table = "\n".join(f"| {key} | {value} |" for key, value in rows)
    return f"""---
library_name: transformers
pipeline_tag: text-generation
tags: [minigpt-tui, {stock.MODEL_TYPE}]
---

# {ckpt.absolute().parent.name}

A small GPT trained from scratch with minigpt-tui, exported as transformers'
`{stock.CLASS}` (the same network: {stock.NETWORK},
{ACTIVATION_NAMES[c.activation]}, zero biases where minigpt has none, the output layer
tied to the token embedding).

| | |
|---|---|
{table}

## Use it

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")
model = AutoModelForCausalLM.from_pretrained("THIS_FOLDER")
ids = tokenizer({prompt}, return_tensors="pt").input_ids
print(tokenizer.decode(model.generate(ids)[0]))
```

`generation_config.json` holds the run's `[sample]` settings: {_sampling(config)}.
The model never learned to look past its last position, so generation stops at
{c.context_length} tokens in all (`max_length`), where `minigpt sample` went on to
{s.max_new_tokens} new tokens by moving its window forward. Greedy decoding
(`do_sample=False`) gives the tokens that `minigpt sample --temperature 0` gives;
sampling draws other random numbers, so its text differs.

Not carried over: the optimizer state (AdamW's and Muon's moments, so training cannot
resume from here as it resumes in minigpt), the run's history (see `minigpt export
--tensorboard`), its alerts and samples.

## Config

```toml
{config_to_toml(apply_values(config, {"notify.url": ""}), EXPORTED_HEADER).rstrip()}
```
"""


def last_eval(run_dir: RunDir, step: int) -> EvalEvent | None:
    """The last eval at or before step in the run's index, if the checkpoint sits in a run
    directory (one outside any gets no index made beside it)."""
    if not run_dir.metrics.is_file():
        return None
    index = HistoryIndex(run_dir)
    try:
        index.sync()
        return index.last_eval(until=step)
    finally:
        index.close()


def _sampling(config: Config) -> str:
    """The [sample] settings generation_config.json holds, in words."""
    s = config.sample
    if s.temperature == 0:
        return "greedy (temperature 0)"
    return f"temperature {s.temperature}, top_k {s.top_k}, top_p {s.top_p}"


def _weights(state: dict[str, Any], config: Config) -> str:
    """Which weights were exported."""
    if "average" in state:
        return (
            f"the running average of the weights (train.ema_decay = {config.train.ema_decay}),"
            " which evals and `minigpt sample` use"
        )
    return "the optimizer's weights (the run kept no running average)"


def _data(config: Config, at: EvalEvent | None) -> str:
    """The corpus: its path, the tokens trained on, its size on disk."""
    path = config.data.path
    parts = [f"`{path}`"]
    if at is not None and at.tokens_seen and at.epochs:
        split = round(at.tokens_seen / at.epochs)  # evals report epochs = seen / train split
        parts.append(
            f"{split:,} tokens in the training split (train_split {config.data.train_split})"
        )
        parts.append(f"{at.tokens_seen:,} tokens read ({at.epochs:.2f} epochs)")
    if not path.startswith(BUILTIN_PREFIX) and (size := _size_on_disk(Path(path))):
        parts.append(f"{byte_size(size)} on disk")
    return ", ".join(parts)


def _size_on_disk(path: Path) -> int | None:
    """Bytes of the corpus file, or of the text files in the corpus folder; None if gone."""
    try:
        if path.is_dir():
            files = (f for f in path.rglob("*") if f.suffix in TEXT_SUFFIXES and f.is_file())
            return sum(f.stat().st_size for f in files)
        return path.stat().st_size
    except OSError:
        return None


def _losses(at: EvalEvent | None, state: dict[str, Any]) -> str:
    """The last eval's val loss and bits per byte, and the best val loss."""
    best = state.get("best_val_loss")
    best_text = f"best {best:.4f}" if isinstance(best, float) and math.isfinite(best) else ""
    if at is None:
        return best_text or "no eval recorded"
    text = f"{number(at.val_loss, '.4f')} at step {at.step:,}'s eval"
    if at.val_bpb is not None:
        text += f" ({at.val_bpb:.3f} bits per byte)"
    if at.train_loss is not None:
        text += f", train loss {at.train_loss:.4f}"
    return f"{text}; {best_text}" if best_text else text

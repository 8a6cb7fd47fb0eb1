"""minigpt export --hf and [model]'s switches: learned positions export as GPT-2, rotary ones
as GPT-NeoX, or Persimmon with qk_norm, each with every activation as it is, and a model
with a switch no stock class has a place for is refused before anything is written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from minigpt.cli.main import main
from minigpt.config import ModelConfig
from minigpt.errors import ExportError
from minigpt.export.gpt_neox import heads_first
from minigpt.export.stock import NO_STOCK_CLASS, stock_class
from minigpt.model import Model
from tests.minigpt.export.exports import train_run, write_corpus

SHAPE = ModelConfig(context_length=16, d_model=32, num_heads=4, num_blocks=2, dropout=0.0)
# The stock class each (model.position, model.qk_norm) exports as.
CLASSES = {
    ("learned", False): "GPT2LMHeadModel",
    ("rotary", False): "GPTNeoXForCausalLM",
    ("rotary", True): "PersimmonForCausalLM",
}
# A value no stock class can hold, for each switch in NO_STOCK_CLASS.
OTHER_VALUES: dict[str, object] = {
    "logit_softcap": 30.0,
    "residual_scalars": True,
}


def _shaped(position: str, qk_norm: bool, activation: str = "relu") -> ModelConfig:
    """SHAPE with these positions, qk_norm and activation."""
    return dataclasses.replace(SHAPE, position=position, qk_norm=qk_norm, activation=activation)


@pytest.mark.parametrize(("position", "qk_norm"), CLASSES)
@pytest.mark.parametrize("activation", ["relu", "relu2", "gelu"])
def test_the_stock_class_computes_what_minigpt_computes(
    position: str, qk_norm: bool, activation: str
) -> None:
    """GPT2LMHeadModel (learned positions), GPTNeoXForCausalLM (rotary) or
    PersimmonForCausalLM (rotary with qk_norm), built from the exported config and given the
    exported weights, gives minigpt's logits within 1e-4, whichever activation the
    feed-forward uses; only the tied output layer is not stored."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = _shaped(position, qk_norm, activation=activation)
    model = Model(config, 64).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)  # every layer counts, the LayerNorms' too
    stock = stock_class(config)
    hf_config = AutoConfig.for_model(stock.MODEL_TYPE, **stock.config(model))
    hf = AutoModelForCausalLM.from_config(hf_config).eval()
    assert type(hf).__name__ == stock.CLASS == CLASSES[position, qk_norm]
    loaded = hf.load_state_dict(stock.weights(model), strict=False)
    assert loaded.missing_keys == ["lm_head.weight"] and loaded.unexpected_keys == []
    assert hf.get_output_embeddings().weight is hf.get_input_embeddings().weight  # tied
    x = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(x)[0], hf(x).logits
    assert (ours - theirs).abs().max().item() < 1e-4


def test_gpt_neox_takes_the_fused_projection_head_by_head() -> None:
    """The q/k/v weight's rows go from minigpt's (q, k, v) x heads to NeoX's heads x (q, k,
    v): row r of head h's key is row (nh + h) * hs + r of ours, and (3h + 1) * hs + r of NeoX's."""
    nh, hs, C = 4, 8, 32
    qkv = torch.arange(3 * C, dtype=torch.float32)[:, None].expand(3 * C, C)  # row i holds i
    neox = heads_first(qkv, nh)
    for h in range(nh):
        for part in range(3):  # q, k, v
            rows = neox[(3 * h + part) * hs : (3 * h + part + 1) * hs, 0]
            assert rows.tolist() == list(range((part * nh + h) * hs, (part * nh + h + 1) * hs))


@pytest.mark.parametrize(("position", "qk_norm"), CLASSES)
@pytest.mark.parametrize("key", NO_STOCK_CLASS)
def test_a_switch_no_stock_class_has_a_place_for_is_named(
    key: str, position: str, qk_norm: bool
) -> None:
    """Each switch no stock class can hold, on, with any exportable positions and norms, is
    an ExportError naming the key and its value."""
    plain = _shaped(position, qk_norm)
    with pytest.raises(ExportError, match=rf"^model\.{key} = .*no stock transformers class"):
        stock_class(ModelConfig(**{**vars(plain), key: OTHER_VALUES[key]}))
    assert CLASSES[position, qk_norm] == stock_class(plain).CLASS


def test_qk_norm_with_learned_positions_is_named() -> None:
    """GPT-2 has no place for normalised queries and keys, and Persimmon's positions are
    rotary: the ExportError names both keys and says what would export."""
    named = r'^model\.qk_norm = true with model\.position = "learned"'
    with pytest.raises(ExportError, match=named):
        stock_class(_shaped("learned", True))


@pytest.mark.trains
def test_exporting_a_run_with_learned_positions_and_qk_norm_fails_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """minigpt export --hf of a learned-positions run with qk_norm exits 2 with the one line
    naming model.qk_norm, and leaves no folder behind."""
    run_values: dict[str, object] = {"model.position": "learned", "model.qk_norm": True}
    run_values |= {"train.max_iters": 2, "train.checkpoint_interval": 2}
    run = train_run(tmp_path / "run", write_corpus(tmp_path), None, **run_values)
    capsys.readouterr()
    out = tmp_path / "hf"
    assert main(["export", "--run-dir", str(run), "--hf", str(out)]) == 2
    error = capsys.readouterr().err
    assert 'model.qk_norm = true with model.position = "learned": no stock' in error
    assert len(error.splitlines()) == 1
    assert not out.exists()

"""minigpt export --hf and [model]'s switches: GPT-2 takes each activation as it is, and a
model with a switch GPT-2 has no place for is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from minigpt.cli.main import main
from minigpt.config import ModelConfig
from minigpt.errors import ExportError
from minigpt.export.hf import GPT2_HOLDS, check_gpt2, gpt2_config, gpt2_weights
from minigpt.model import Model
from tests.minigpt.export.exports import train_run, write_corpus

SHAPE = ModelConfig(context_length=16, d_model=32, num_heads=4, num_blocks=2, dropout=0.0)
# A value GPT-2 cannot hold, for each switch in GPT2_HOLDS.
OTHER_VALUES: dict[str, object] = {
    "position": "rotary",
    "qk_norm": True,
    "logit_softcap": 30.0,
    "residual_scalars": True,
}


@pytest.mark.parametrize("activation", ["relu", "relu2", "gelu"])
def test_gpt2_computes_what_minigpt_computes_with_each_activation(activation: str) -> None:
    """GPT2LMHeadModel, given the exported weights and config, gives minigpt's logits
    (within 1e-4) whichever activation the feed-forward uses."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = Model(ModelConfig(**{**vars(SHAPE), "activation": activation}), 64).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)  # every layer counts, the LayerNorms' too
    hf = GPT2LMHeadModel(GPT2Config.from_dict(gpt2_config(model))).eval()
    missing = hf.load_state_dict(gpt2_weights(model), strict=False).missing_keys
    assert set(missing) <= {"lm_head.weight"}  # tied to wte
    x = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(x)[0], hf(x).logits
    assert (ours - theirs).abs().max().item() < 1e-4


@pytest.mark.parametrize("key", GPT2_HOLDS)
def test_a_switch_gpt2_has_no_place_for_is_named(key: str) -> None:
    """Each switch GPT-2 cannot hold, on, is an ExportError naming the key and its value."""
    config = ModelConfig(**{**vars(SHAPE), key: OTHER_VALUES[key]})
    with pytest.raises(ExportError, match=rf"^model\.{key} = .*GPT-2 has no place for it"):
        check_gpt2(config)
    check_gpt2(SHAPE)


@pytest.mark.trains
def test_exporting_a_rotary_run_fails_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """minigpt export --hf of a rotary run exits 2 with the one line naming model.position,
    and leaves no folder behind."""
    rotary: dict[str, object] = {"model.position": "rotary", "train.max_iters": 2}
    rotary |= {"train.checkpoint_interval": 2}
    run = train_run(tmp_path / "run", write_corpus(tmp_path), None, **rotary)
    capsys.readouterr()
    out = tmp_path / "hf"
    assert main(["export", "--run-dir", str(run), "--hf", str(out)]) == 2
    assert 'model.position = "rotary": GPT-2 has no place for it' in capsys.readouterr().err
    assert not out.exists()

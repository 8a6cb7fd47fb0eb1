"""AdamW or Muon: which weights each optimizer owns, their rates, and what health reports."""

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from minigpt import optimizers
from minigpt.config import Config, apply_values, restart_keys
from minigpt.health import block_health
from minigpt.model import Model
from minigpt.optimizers import (
    StackedMuon,
    build_optimizers,
    hidden_matrices,
    set_learning_rates,
)
from minigpt.service.run import load_corpus
from minigpt.train import Trainer

CPU = torch.device("cpu")


def _model() -> Model:
    """A small seeded model."""
    torch.manual_seed(0)
    config = apply_values(Config(), {"model.d_model": 32, "model.num_heads": 2}).model
    return Model(config, vocab_size=50)


def test_muon_owns_the_blocks_matrices_and_adamw_the_rest() -> None:
    """Every weight is in exactly one optimizer; Muon has the 2-D weights inside the blocks,
    AdamW the (tied) embedding, norms and biases."""
    model = _model()
    train = apply_values(Config(), {"train.optimizer": "muon"}).train
    adamw, muon = build_optimizers(model, train, CPU)
    owned = [[id(p) for group in o.param_groups for p in group["params"]] for o in (adamw, muon)]
    assert not set(owned[0]) & set(owned[1])
    assert sorted(owned[0] + owned[1]) == sorted(id(p) for p in model.parameters())
    assert set(owned[1]) == {id(p) for p in hidden_matrices(model)}
    assert len(owned[1]) == 4 * model.config.num_blocks  # qkv, proj, up, down
    assert id(model.token_embedding.weight) in owned[0]
    assert isinstance(muon, StackedMuon)
    adamw_only = apply_values(Config(), {"train.optimizer": "adamw"}).train
    only_adamw = build_optimizers(model, adamw_only, CPU)
    assert len(only_adamw) == 1 and isinstance(only_adamw[0], torch.optim.AdamW)


def test_each_optimizer_follows_its_own_peak_and_the_current_weight_decay() -> None:
    """At a share of the schedule, AdamW groups sit at share x learning_rate and Muon's at
    share x muon_learning_rate; weight decay (changed hot) reaches AdamW's matrices, never
    its norms, nor Muon's matrices."""
    model = _model()
    values = {"train.optimizer": "muon", "train.learning_rate": 2e-3}
    train = apply_values(Config(), values | {"train.muon_learning_rate": 0.04}).train
    adamw, muon = build_optimizers(model, train, CPU)
    hot = {"train.muon_learning_rate": 0.04, "train.weight_decay": 0.3}
    decayed = apply_values(Config(), values | hot).train
    set_learning_rates([adamw, muon], decayed, 0.5)
    assert [g["lr"] for g in adamw.param_groups] == pytest.approx([1e-3, 1e-3])
    assert [g["weight_decay"] for g in adamw.param_groups] == [0.3, 0.0]
    assert [(g["lr"], g["weight_decay"]) for g in muon.param_groups] == [(0.02, 0.0)]


def test_optimizer_needs_a_fresh_start_and_muon_rate_applies_hot() -> None:
    """Switching optimizers rebuilds the run; Muon's rate changes at the next step."""
    old = Config()
    assert old.train.optimizer == "muon"
    assert restart_keys(old, apply_values(old, {"train.optimizer": "adamw"})) == ["train.optimizer"]
    assert restart_keys(old, apply_values(old, {"train.muon_learning_rate": 0.05})) == []
    with pytest.raises(Exception, match="adamw, muon"):
        apply_values(old, {"train.optimizer": "sgd"})


@pytest.mark.trains
@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_update_ratio_is_the_weights_actual_change(
    optimizer: str, corpus_file: Path, tiny_config
) -> None:
    """The update ratio health rebuilds from the optimizer's state is the std of what the
    last step changed over the weights' std: exactly for AdamW; for Muon, whose Nesterov
    gradient term is gone by then, within 5% (about 1.5% here)."""
    values = {"train.optimizer": optimizer, "train.warmup_iters": 0, "train.grad_clip": 0.0}
    config = tiny_config(corpus_file, **values)
    trainer = Trainer(config, load_corpus(config, None))
    for _ in range(5):
        trainer.train_step()
    before = copy.deepcopy(trainer.model.blocks)
    trainer.train_step()
    ratios, _ = block_health(trainer.model.blocks, trainer.optimizers)
    for old, new, ratio in zip(before, trainer.model.blocks, ratios, strict=True):
        both = zip(old.parameters(), new.parameters(), strict=True)
        pairs = [(a, b) for a, b in both if a.dim() == 2]
        change = torch.cat([(b - a).flatten() for a, b in pairs])
        weights = torch.cat([b.flatten() for _, b in pairs])
        actual = (change.std() / weights.std()).item()
        assert ratio == pytest.approx(actual, rel=1e-3 if optimizer == "adamw" else 0.05)


def test_stacked_muon_updates_as_torch_muon_does(monkeypatch) -> None:
    """Updating the matrices of one shape together changes nothing but the speed: three
    steps on the same gradients leave bit for bit the weights and momentum that
    torch.optim.Muon leaves (in bfloat16, as torch's does, whatever this CPU has)."""
    monkeypatch.setattr(optimizers, "native_bfloat16", lambda device_type: True)
    stacked_model, torch_model = _model(), _model()
    settings: dict[str, Any] = {"lr": 0.02, "weight_decay": 0.1, "momentum": 0.95}
    stacked = StackedMuon(hidden_matrices(stacked_model), **settings)
    reference = torch.optim.Muon(hidden_matrices(torch_model), **settings)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        for a, b in zip(hidden_matrices(stacked_model), hidden_matrices(torch_model), strict=True):
            a.grad = torch.randn(a.shape, generator=generator)
            b.grad = a.grad.clone()
        stacked.step()
        reference.step()
    for a, b in zip(hidden_matrices(stacked_model), hidden_matrices(torch_model), strict=True):
        assert torch.equal(a, b)
        assert torch.equal(
            stacked.state[a]["momentum_buffer"], reference.state[b]["momentum_buffer"]
        )


def test_without_native_bfloat16_muon_orthogonalises_in_float32(monkeypatch) -> None:
    """Where bfloat16 is emulated, Newton-Schulz runs in float32: the same orthogonalisation
    (singular values near 1, as in bfloat16) without bfloat16's rounding."""
    momenta = torch.randn(3, 48, 16, generator=torch.Generator().manual_seed(2))
    coefficients, steps, eps = (3.4445, -4.775, 2.0315), 5, 1e-7
    monkeypatch.setattr(optimizers, "native_bfloat16", lambda device_type: False)
    exact = optimizers.orthogonalise(momenta, coefficients, steps, eps)
    monkeypatch.setattr(optimizers, "native_bfloat16", lambda device_type: True)
    rounded = optimizers.orthogonalise(momenta, coefficients, steps, eps)
    assert exact.dtype == torch.float32 and rounded.dtype == torch.bfloat16
    assert torch.allclose(exact, rounded.float(), atol=0.02)
    singular = torch.linalg.svdvals(exact)
    assert singular.min() > 0.5 and singular.max() < 1.3

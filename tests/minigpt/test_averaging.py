"""The running average of the weights: how it moves, and that evals and samples use it."""

from pathlib import Path

import pytest
import torch

from minigpt.averaging import WeightAverage, warmed_decay
from minigpt.config import apply_values
from minigpt.model import Model
from minigpt.service.run import load_corpus
from minigpt.train import Trainer

pytestmark = pytest.mark.trains


def _trainer(corpus_file: Path, tiny_config, **values) -> Trainer:
    """A tiny trainer, dropout off so a loss by hand matches estimate_loss's."""
    config = tiny_config(corpus_file, **({"model.dropout": 0.0} | values))
    return Trainer(config, load_corpus(config))


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_the_average_moves_by_the_warmed_decay(corpus_file: Path, tiny_config) -> None:
    """After step s the average keeps min(decay, (1 + s) / (10 + s)) of itself: a fast
    follower at first, then decay."""
    assert warmed_decay(0.99, 1) == pytest.approx(2 / 11)
    assert warmed_decay(0.99, 5000) == 0.99
    model = _trainer(corpus_file, tiny_config).model
    average = WeightAverage(model)
    before = _weights(average.model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    average.update(model, 0.99, step=1)
    kept = 2 / 11
    for got, old, new in zip(average.model.parameters(), before, model.parameters(), strict=True):
        torch.testing.assert_close(got, kept * old + (1 - kept) * new)
    assert not any(p.requires_grad for p in average.model.parameters())


def test_evals_and_samples_use_the_average(corpus_file: Path, tiny_config) -> None:
    """With train.ema_decay the eval loss is the average's, not the trained weights'; at 0
    there is no average and eval_model is the trained model."""
    trainer = _trainer(corpus_file, tiny_config, **{"train.ema_decay": 0.9})
    for _ in range(30):
        trainer.train_step()
    assert trainer.average is not None and trainer.eval_model is trainer.average.model
    got = trainer.estimate_loss()["val"]

    def by_hand(model: Model) -> float:
        generator = torch.Generator().manual_seed(trainer.config.train.seed + 1)
        with torch.no_grad():
            batches = [
                trainer.batch("val", generator) for _ in range(trainer.config.train.eval_iters)
            ]
            return torch.stack([model.loss(x, y) for x, y in batches]).mean().item()

    assert got == pytest.approx(by_hand(trainer.average.model), rel=1e-5)
    assert got != pytest.approx(by_hand(trainer.model), rel=1e-3)
    plain = _trainer(corpus_file, tiny_config, **{"train.ema_decay": 0})
    assert plain.average is None and plain.eval_model is plain.model


def test_switched_on_mid_run_the_average_starts_at_the_weights(
    corpus_file: Path, tiny_config
) -> None:
    """ema_decay applies hot: 0 drops the average, and turning it back on starts it afresh
    from the weights as they are."""
    trainer = _trainer(corpus_file, tiny_config)
    for _ in range(5):
        trainer.train_step()
    trainer.apply_config(apply_values(trainer.config, {"train.ema_decay": 0}))
    assert trainer.average is None
    trainer.train_step()
    trainer.apply_config(apply_values(trainer.config, {"train.ema_decay": 0.99}))
    assert trainer.average is not None
    for got, want in zip(trainer.eval_model.parameters(), trainer.model.parameters(), strict=True):
        assert torch.equal(got, want)


def test_a_checkpoint_without_an_average_starts_one_at_its_weights(
    corpus_file: Path, tiny_config
) -> None:
    """A checkpoint from before train.ema_decay (no "average" key) loads; the average starts
    at its weights."""
    trainer = _trainer(corpus_file, tiny_config)
    for _ in range(5):
        trainer.train_step()
    state = trainer.state_dict()
    assert "average" in state
    del state["average"]
    fresh = _trainer(corpus_file, tiny_config)
    fresh.load_state_dict(state)
    for got, want in zip(fresh.eval_model.parameters(), trainer.model.parameters(), strict=True):
        assert torch.equal(got, want)

"""The model: shapes, causality, the KV cache and sampling."""

import math

import pytest
import torch
import torch.nn.functional as F

from minigpt.config import Config, ModelConfig, apply_values
from minigpt.estimate import footprint, param_count
from minigpt.linear_cross_entropy import linear_cross_entropy
from minigpt.model import KVCache, Model
from minigpt.next_token import sample_next

VOCAB = 50


@pytest.fixture
def model() -> Model:
    """A tiny seeded model in eval mode."""
    torch.manual_seed(0)
    config = ModelConfig(context_length=16, d_model=32, num_heads=4, num_blocks=2, dropout=0.0)
    return Model(config, VOCAB).eval()


def test_forward_shapes_and_initial_loss(model: Model) -> None:
    """forward(x, y) gives (B, T, vocab) logits and a scalar loss near ln(vocab) at init
    (targets drawn apart from the inputs: at init each token's logit for itself stands out)."""
    x, y = torch.randint(VOCAB, (3, 16)), torch.randint(VOCAB, (3, 16))
    logits, loss = model(x, y)
    assert logits.shape == (3, 16, VOCAB)
    assert loss.shape == ()
    assert abs(loss.item() - math.log(VOCAB)) < 0.5
    assert model(x)[1] is None


def test_output_layer_is_tied_to_token_embedding(model: Model) -> None:
    """The output layer shares the embedding's weight and is counted once."""
    assert model.lm_head.weight is model.token_embedding.weight
    unique = {id(p): p.numel() for p in model.parameters()}
    assert model.num_params() == sum(unique.values())


def test_attention_is_causal(model: Model) -> None:
    """Changing a later token never changes the logits at earlier positions."""
    x = torch.randint(VOCAB, (2, 16))
    changed = x.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % VOCAB
    before, after = model(x)[0], model(changed)[0]
    torch.testing.assert_close(before[:, :10], after[:, :10])
    assert not torch.allclose(before[:, 10:], after[:, 10:])


def test_kv_cache_logits_equal_full_recompute(model: Model) -> None:
    """Prefill plus one-token steps through the cache give the full forward's logits."""
    x = torch.randint(VOCAB, (2, 16))
    cache = KVCache(model, batch_size=2)
    logits, _ = model(x[:, :5], cache=cache)
    torch.testing.assert_close(logits, model(x[:, :5])[0])
    for t in range(5, 16):
        step_logits, _ = model(x[:, t : t + 1], cache=cache)
        full = model(x[:, : t + 1])[0][:, -1]
        torch.testing.assert_close(step_logits[:, -1], full, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("options", [{}, {"top_k": 5}, {"top_p": 0.8, "temperature": 0.7}])
def test_generate_same_text_with_and_without_cache(model: Model, options: dict) -> None:
    """With one seed, cached and uncached generation agree, also past context_length."""
    prompt = torch.randint(VOCAB, (1, 5))
    runs = []
    for use_cache in (True, False):
        generator = torch.Generator().manual_seed(7)
        runs.append(model.generate(prompt, 60, generator=generator, use_cache=use_cache, **options))
    assert runs[0].shape == (1, 65)
    assert torch.equal(runs[0], runs[1])


def test_long_prompt_is_cropped_to_context(model: Model) -> None:
    """A prompt longer than context_length is cropped as the lesson does, not rejected."""
    prompt = torch.randint(VOCAB, (1, 40))
    out = model.generate(prompt, 3, temperature=0)
    assert out.shape == (1, 43)
    assert torch.equal(out[:, :40], prompt)


def test_generate_leaves_training_state_alone(model: Model) -> None:
    """Generating restores train mode and never draws from the global random state."""
    model.train()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model.generate(torch.zeros(1, 1, dtype=torch.long), 10)
    assert model.training
    assert torch.equal(torch.rand(3), expected)


def test_greedy_and_top_k_one_pick_the_argmax() -> None:
    """Temperature 0, top_k 1 and a tiny top_p all choose the most likely token."""
    logits = torch.tensor([[0.1, 3.0, 0.2, -1.0], [2.0, 0.0, 0.5, 1.9]])
    generator = torch.Generator().manual_seed(0)
    expected = torch.tensor([[1], [0]])
    assert torch.equal(sample_next(logits, 0.0, 0, 1.0, generator)[0], expected)
    for _ in range(20):
        assert torch.equal(sample_next(logits, 1.0, 1, 1.0, generator)[0], expected)
        assert torch.equal(sample_next(logits, 1.0, 0, 1e-6, generator)[0], expected)


def test_top_p_keeps_only_the_nucleus() -> None:
    """top_p samples only among the most likely tokens that cover p."""
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    generator = torch.Generator().manual_seed(0)
    seen = {int(sample_next(logits, 1.0, 0, 0.75, generator)[0]) for _ in range(300)}
    assert seen == {0, 1}


@pytest.mark.parametrize(
    ("context_length", "d_model", "num_heads", "num_blocks", "vocab_size"),
    [(8, 16, 2, 1, 50), (64, 128, 4, 4, 7000), (33, 48, 3, 5, 256)],
)
def test_param_count_matches_the_model(context_length, d_model, num_heads, num_blocks, vocab_size):
    """The dashboard's torch-free count equals the parameters a built Model has."""
    shape = ModelConfig(
        context_length=context_length, d_model=d_model, num_heads=num_heads, num_blocks=num_blocks
    )
    assert param_count(shape, vocab_size) == Model(shape, vocab_size).num_params()


def test_footprint_grows_with_the_config() -> None:
    """Tokens per step are batch x context x accumulation; bigger shapes cost more."""
    small = footprint(Config(), 1000)
    assert small.tokens_per_step == 12 * 64
    assert small.params == param_count(Config().model, 1000)
    accumulating = footprint(apply_values(Config(), {"train.grad_accum_steps": 4}), 1000)
    assert accumulating.tokens_per_step == 4 * small.tokens_per_step
    assert accumulating.flops_per_step == 4 * small.flops_per_step
    wider = footprint(apply_values(Config(), {"model.d_model": 256}), 1000)
    assert wider.params > small.params and wider.flops_per_step > small.flops_per_step
    assert wider.memory_bytes > small.memory_bytes > 16 * small.params


def test_footprint_counts_the_optimizers_state_and_the_average() -> None:
    """AdamW keeps two moments a weight; Muon keeps one for each block's 12 d^2 matrix weights;
    the weight average keeps one more number a weight."""
    muon = footprint(apply_values(Config(), {"train.optimizer": "muon"}), 1000)
    adamw = footprint(apply_values(Config(), {"train.optimizer": "adamw"}), 1000)
    m = Config().model
    matrices = m.num_blocks * 12 * m.d_model**2
    assert adamw.memory_bytes - muon.memory_bytes == pytest.approx(1.5 * 4 * matrices, abs=2)
    assert adamw.params == muon.params and adamw.flops_per_step == muon.flops_per_step
    plain = footprint(apply_values(Config(), {"train.ema_decay": 0}), 1000)
    assert muon.memory_bytes - plain.memory_bytes == pytest.approx(1.5 * 4 * muon.params, abs=2)


@pytest.mark.parametrize("rows", [1, 64, 130])
def test_linear_cross_entropy_matches_the_plain_loss_and_gradients(rows: int) -> None:
    """The chunked loss equals F.cross_entropy of the full logits, in value and gradients."""
    generator = torch.Generator().manual_seed(rows)
    h = torch.randn(rows, 16, generator=generator, requires_grad=True)
    weight = torch.randn(300, 16, generator=generator, requires_grad=True)
    targets = torch.randint(0, 300, (rows,), generator=generator)
    plain = F.cross_entropy(h @ weight.T, targets)
    plain_grads = torch.autograd.grad(plain * 3.0, (h, weight))
    chunked = linear_cross_entropy(h, weight, targets)
    chunked_grads = torch.autograd.grad(chunked * 3.0, (h, weight))
    torch.testing.assert_close(chunked, plain)
    for got, want in zip(chunked_grads, plain_grads, strict=True):
        torch.testing.assert_close(got, want)
    with torch.no_grad():
        torch.testing.assert_close(linear_cross_entropy(h, weight, targets), plain)


def test_linear_cross_entropy_makes_no_gradients_when_they_are_off() -> None:
    """An evaluation (no_grad) costs one product per chunk, not the three of training."""
    h = torch.randn(64, 16, requires_grad=True)
    weight = torch.randn(300, 16, requires_grad=True)
    targets = torch.randint(0, 300, (64,))

    def products(grad: bool) -> list[str]:
        with torch.set_grad_enabled(grad), torch.profiler.profile() as profile:
            linear_cross_entropy(h, weight, targets)
        return [e.key for e in profile.key_averages() if e.key in ("aten::mm", "aten::addmm_")]

    assert sorted(products(grad=True)) == ["aten::addmm_", "aten::mm"]  # the logits' and grads'
    assert products(grad=False) == ["aten::mm"]


def test_model_loss_is_forwards_loss(model: Model) -> None:
    """Model.loss (what training uses) gives forward(x, y)'s loss."""
    x = torch.randint(0, VOCAB, (3, 16))
    y = torch.randint(0, VOCAB, (3, 16))
    torch.testing.assert_close(model.loss(x, y), model(x, y)[1])

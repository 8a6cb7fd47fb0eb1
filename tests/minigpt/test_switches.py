"""The speedrun's switches of [model], each alone and all on together: the model keeps every
promise the lesson's makes (one loss, cached = uncached, explicit = fused attention), rotary
is GPT-NeoX's, the softcap bounds every logit, the residual scalars train under AdamW."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from minigpt.config import Config, ModelConfig, apply_values
from minigpt.estimate import param_count
from minigpt.inspection import inspect_next, lens_probs
from minigpt.learned.views import LearnedViews
from minigpt.model import Block, Model
from minigpt.optimizers import build_optimizers
from minigpt.rotary import ROPE_BASE, rotary_tables, rotate
from minigpt.tokenizer import ByteTokenizer
from tests.tiny import lessons_model

VOCAB = 256  # the byte tokenizer's, so inspection can read the model's tokens
CAP = 3.0  # small, so random weights' logits go past it
SWITCHES: dict[str, dict[str, Any]] = {
    "relu2": {"activation": "relu2"},
    "gelu": {"activation": "gelu"},
    "rotary": {"position": "rotary"},
    "qk_norm": {"qk_norm": True},
    "softcap": {"logit_softcap": CAP},
    "residual_scalars": {"residual_scalars": True},
    "all": {
        "activation": "relu2",
        "position": "rotary",
        "qk_norm": True,
        "logit_softcap": CAP,
        "residual_scalars": True,
    },
}
LESSON = lessons_model(context_length=16, d_model=32, num_heads=4, num_blocks=2)


def config(switch: str) -> ModelConfig:
    """The small model's config with a switch on."""
    return dataclasses.replace(LESSON, **SWITCHES[switch])


def scrambled(model: Model) -> Model:
    """The model in eval mode with every weight random (none left at zero, the residual
    scalars off their start too), so each switch changes what it computes."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
            elif "lambdas" in name:
                p.add_(torch.rand_like(p))
    return model.eval()


def switched(switch: str) -> Model:
    """A small seeded model with a switch on, scrambled."""
    torch.manual_seed(0)
    return scrambled(Model(config(switch), VOCAB))


def tokens(*shape: int, seed: int = 1) -> torch.Tensor:
    """Random token ids of this shape, seeded."""
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("switch", SWITCHES)
def test_forward_gives_logits_of_every_position_and_a_finite_loss(switch: str) -> None:
    """forward(x, y) gives (B, T, vocab) logits and a finite scalar loss, near ln(vocab) for
    a freshly built model."""
    x, y = tokens(3, 16), tokens(3, 16, seed=2)
    logits, loss = switched(switch)(x, y)
    assert logits.shape == (3, 16, VOCAB)
    assert loss is not None and loss.shape == () and math.isfinite(loss.item())
    torch.manual_seed(0)
    _, fresh_loss = Model(config(switch), VOCAB)(x, y)
    assert fresh_loss is not None and abs(fresh_loss.item() - math.log(VOCAB)) < 0.5


@pytest.mark.parametrize("switch", SWITCHES)
def test_the_chunked_loss_is_forwards_loss_in_value_and_gradients(switch: str) -> None:
    """Model.loss (training's chunked loss) and token_losses give forward's loss, and loss's
    gradients are forward's, softcap's slope included."""
    model = switched(switch).train()
    x, y = tokens(3, 16), tokens(3, 16, seed=2)
    chunked = model.loss(x, y)
    want = torch.autograd.grad(chunked, list(model.parameters()))
    _, plain = model(x, y)
    assert plain is not None
    got = torch.autograd.grad(plain, list(model.parameters()))
    torch.testing.assert_close(chunked, plain)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        assert float(model.token_losses(x, y).mean()) == pytest.approx(plain.item(), abs=1e-5)


@pytest.mark.parametrize("switch", SWITCHES)
def test_cached_generation_gives_the_uncached_text(switch: str) -> None:
    """Greedy text is the same with and without the KV cache, from a prompt longer than the
    context, across several jumps of the window (positions restart at each jump)."""
    model = switched(switch)
    prompt = tokens(1, 20, seed=3)
    runs = [model.generate(prompt, 40, temperature=0, use_cache=c) for c in (True, False)]
    assert runs[0].shape == (1, 60)
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("switch", SWITCHES)
def test_explicit_attention_computes_what_the_fused_kernel_does(switch: str) -> None:
    """The explicit path that keeps attention weights gives the fused path's logits, with
    causal weights whose rows sum to 1 for every block."""
    model = switched(switch)
    x = tokens(2, 16)
    weights: list[torch.Tensor] = []
    with torch.no_grad():
        fused, explicit = model(x)[0], model(x, attention=weights)[0]
    torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-4)
    assert len(weights) == LESSON.num_blocks
    for att in weights:
        assert att.shape == (2, LESSON.num_heads, 16, 16)
        torch.testing.assert_close(att.sum(-1), torch.ones(2, LESSON.num_heads, 16))
        assert not att.triu(1).any()


@pytest.mark.parametrize("switch", SWITCHES)
def test_the_estimate_counts_the_switched_models_parameters(switch: str) -> None:
    """The dashboard's torch-free count equals the parameters a switched Model has."""
    shape = config(switch)
    assert param_count(shape, VOCAB) == Model(shape, VOCAB).num_params()


def test_rotary_scores_depend_only_on_how_far_apart_two_tokens_are() -> None:
    """Shifting every position by one constant leaves a block's attention weights and output
    unchanged (its tables sliced further on); a shift of one query alone changes them."""
    model = switched("all")
    block = model.blocks[0]
    assert isinstance(block, Block)
    x = torch.randn(2, 8, LESSON.d_model, generator=torch.Generator().manual_seed(4))

    def attend(start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's output and weights with x at positions start .. start + 7."""
        rope = (model.rope_cos[start : start + 8], model.rope_sin[start : start + 8])
        weights: list[torch.Tensor] = []
        with torch.no_grad():
            return block.attention(x, rope, weights=weights), weights[0]

    out, weights = attend(0)
    for start in (1, 5, 8):
        shifted_out, shifted_weights = attend(start)
        torch.testing.assert_close(shifted_weights, weights, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(shifted_out, out, atol=1e-5, rtol=1e-4)
    cos, sin = rotary_tables(8, 8)
    q, k = torch.randn(2, 8, generator=torch.Generator().manual_seed(5))
    near = rotate(q, cos[3], sin[3]) @ rotate(k, cos[1], sin[1])
    assert near == pytest.approx(float(rotate(q, cos[7], sin[7]) @ rotate(k, cos[5], sin[5])))
    assert near != pytest.approx(float(rotate(q, cos[4], sin[4]) @ rotate(k, cos[1], sin[1])))


def test_rotary_is_gpt_neox_as_transformers_computes_it() -> None:
    """minigpt's rotation of q and k equals transformers' GPTNeoX rotary over the whole head
    (rotary_pct / partial_rotary_factor 1) with base ROPE_BASE, so a rotary model can be
    exported as GPTNeoXForCausalLM."""
    from transformers import GPTNeoXConfig
    from transformers.models.gpt_neox.modeling_gpt_neox import (
        GPTNeoXRotaryEmbedding,
        apply_rotary_pos_emb,
    )

    hs, T = 8, 16
    rope = {"rope_type": "default", "rope_theta": ROPE_BASE, "partial_rotary_factor": 1.0}
    neox = GPTNeoXConfig(
        hidden_size=4 * hs, num_attention_heads=4, max_position_embeddings=T, rope_parameters=rope
    )
    q, k = torch.randn(2, 1, 4, T, hs, generator=torch.Generator().manual_seed(6))
    cos, sin = GPTNeoXRotaryEmbedding(neox)(q, torch.arange(T)[None])  # (1, T, hs)
    want = apply_rotary_pos_emb(q, k, cos, sin)
    ours = rotary_tables(T, hs)
    torch.testing.assert_close(ours[0], cos[0])
    torch.testing.assert_close((rotate(q, *ours), rotate(k, *ours)), want)


def test_a_rotary_model_has_no_position_table() -> None:
    """With rotary positions the model holds no position embedding, and its saved weights no
    rotary tables either (they are made from the config)."""
    model = switched("rotary")
    assert model.position_embedding is None
    assert not [name for name in model.state_dict() if "position" in name or "rope" in name]
    assert Model(LESSON, VOCAB).position_embedding is not None


@pytest.mark.parametrize(("switch", "invariant"), [("qk_norm", True), ("rotary", False)])
def test_qk_norm_makes_attention_blind_to_the_scale_of_queries_and_keys(
    switch: str, invariant: bool
) -> None:
    """With qk_norm, scaling the query and key projections leaves the logits as they were
    (each head's q and k are normalised); without it the attention sharpens."""
    model = switched(switch)
    x = tokens(2, 16)
    with torch.no_grad():
        before = model(x)[0]
        for block in model.blocks:
            assert isinstance(block, Block)
            block.attention.qkv.weight[: 2 * LESSON.d_model] *= 5.0  # q's and k's rows
        after = model(x)[0]
    assert torch.allclose(after, before, atol=1e-4) == invariant


def test_the_softcap_bounds_every_logit_by_the_cap() -> None:
    """Logits whose raw values pass the cap come out inside (-cap, cap), in forward, in the
    logit lens and in generation's probabilities."""
    model = switched("softcap")
    x = tokens(2, 16)
    stream: list[torch.Tensor] = []
    with torch.no_grad():
        logits, _ = model(x, residuals=stream)
        raw = F.linear(model.final_hidden(x), model.lm_head.weight)
        lens = lens_probs(model, stream, position=5)
    assert raw.abs().max() > 2 * CAP  # the cap has work to do
    assert logits.abs().max() < CAP
    torch.testing.assert_close(logits, CAP * torch.tanh(raw / CAP))
    floor = math.exp(-2 * CAP) / VOCAB  # the least a token can have when logits lie within cap
    assert lens.min() > floor


def test_the_residual_scalars_are_parameters_trained_by_adamw_without_decay() -> None:
    """resid_lambdas and x0_lambdas (one each a block) get gradients and belong to AdamW's
    undecayed group, never to Muon; with them off the model has neither."""
    model = switched("residual_scalars").train()
    scalars = [model.resid_lambdas, model.x0_lambdas]
    assert all(p.shape == (LESSON.num_blocks,) for p in scalars)
    model.loss(tokens(2, 16), tokens(2, 16, seed=2)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in scalars)
    train = apply_values(Config(), {"train.optimizer": "muon", "train.weight_decay": 0.1}).train
    adamw, muon = build_optimizers(model, train, torch.device("cpu"))
    undecayed = [g for g in adamw.param_groups if g["weight_decay"] == 0.0]
    assert all(any(p is q for g in undecayed for q in g["params"]) for p in scalars)
    assert not any(p is q for g in muon.param_groups for q in g["params"] for p in scalars)
    assert not hasattr(switched("rotary"), "resid_lambdas")


def test_fresh_residual_scalars_leave_the_model_as_without_them() -> None:
    """At their start (resid 1, x0 0) the scalars change nothing: the same other weights
    give the same logits with the switch on or off."""
    plain = scrambled(Model(LESSON, VOCAB))
    scaled = Model(config("residual_scalars"), VOCAB).eval()
    missing = scaled.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["resid_lambdas", "x0_lambdas"]
    x = tokens(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(scaled(x)[0], plain(x)[0])


def test_inspection_and_the_learned_views_read_a_rotary_softcapped_qk_normed_model() -> None:
    """inspect_next (odds, attention, logit lens) and an eval's learned record run on the
    model with every switch on; the last block's lens is the model's own capped odds."""
    model = switched("all")
    tokenizer = ByteTokenizer()
    prompt = "the cat sat on the mat"
    event = inspect_next(model, tokenizer, prompt, attention=True)
    assert event.attention is not None and len(event.attention) == LESSON.num_blocks
    assert len(event.lens) == LESSON.num_blocks
    with torch.no_grad():
        logits, _ = model(torch.tensor([tokenizer.encode(prompt)[-16:]]))
    assert event.lens[-1][0].id == int(logits[0, -1].argmax())
    assert event.candidates[0].prob == pytest.approx(float(F.softmax(logits[0, -1], -1).max()))
    probe = tokens(40, seed=7).tolist()
    views = LearnedViews(tokenizer, probe, list(range(65, 97)))
    record = views.record(model, step=3, position_loss=[2.0] * 16)
    assert len(record.probe_loss) == 40 and record.probe_loss[0] is None
    assert all(loss is not None and loss > 0 for loss in record.probe_loss[1:])
    assert len(record.heads) == LESSON.num_blocks and len(record.embedding_map.x) == 32

"""The learned views' measures equal what they claim to measure: the probe's losses are the
lesson's cross-entropy, the last block's lens is the model's own odds, a model blind to its
context has a flat position curve, and a rotated embedding space draws the same map."""

import math

import pytest
import torch
import torch.nn.functional as F

from minigpt.inspection import inspect_next, lens_probs
from minigpt.learned.embedding_map import embedding_map
from minigpt.learned.probe import choose_probe, score_probe, windows
from minigpt.learned.views import context_gain
from minigpt.model import Block, Model
from minigpt.tokenizer import ByteTokenizer
from tests.tiny import lessons_model

# The lesson's learned positions, whose table a test below zeroes.
CONFIG = lessons_model(context_length=16, d_model=32, num_heads=2, num_blocks=3)


def trained_like_model(seed: int = 0) -> Model:
    """A small model with every weight random (none left at zero), in eval mode."""
    torch.manual_seed(seed)
    model = Model(CONFIG, 256)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    return model.eval()


def test_probe_losses_are_the_lessons_cross_entropy() -> None:
    """Each probe token's loss is F.cross_entropy of the lesson's forward at that position,
    with the context its window gives it; every token after the first is scored once."""
    model = trained_like_model()
    ids = torch.randint(0, 256, (53,), generator=torch.Generator().manual_seed(1)).tolist()
    score = score_probe(model, ids)
    assert score.loss[0] is None
    for start, end, first in windows(len(ids), CONFIG.context_length):
        with torch.no_grad():
            logits, _ = model(torch.tensor([ids[start:end]]))
        want = F.cross_entropy(logits[0], torch.tensor(ids[start + 1 : end + 1]), reduction="none")
        for target in range(first, end + 1):
            assert score.loss[target] == pytest.approx(float(want[target - start - 1]), abs=1e-5)
            _, p = score.guesses[target][0]
            assert p == pytest.approx(float(F.softmax(logits[0, target - start - 1], -1).max()))
    assert all(loss is not None for loss in score.loss[1:])


def test_a_short_probe_is_scored_in_one_window() -> None:
    """A passage shorter than the context, even of one token, is scored without error."""
    model = trained_like_model()
    assert score_probe(model, [5]).loss == [None]
    assert len(score_probe(model, [5, 6, 7]).loss) == 3


def test_the_probe_starts_after_a_line_break_and_stays_in_val() -> None:
    """The chosen passage is a stretch of val that starts on a new line."""
    text = "".join(f"line {i} of the validation text\n" for i in range(400))
    val = torch.tensor(list(text.encode()))
    ids = choose_probe(val, ByteTokenizer(), seed=3, context=64)
    assert len(ids) == 1024
    passage = bytes(ids).decode()
    assert passage.startswith("line ") and passage in text


def test_the_last_blocks_lens_is_the_models_own_odds() -> None:
    """The logit lens of the last block equals the softmax of the model's logits (1e-5), and
    inspect_next's lens lists each block's likeliest tokens by it."""
    model = trained_like_model()
    x = torch.randint(32, 127, (1, 12), generator=torch.Generator().manual_seed(2))  # ASCII
    stream: list[torch.Tensor] = []
    with torch.no_grad():
        logits, _ = model(x, residuals=stream)
        lens = lens_probs(model, stream, position=7)
    assert lens.shape == (CONFIG.num_blocks, 256)
    torch.testing.assert_close(lens[-1], F.softmax(logits[0, 7], -1), atol=1e-5, rtol=0)
    assert not torch.allclose(lens[0], lens[-1], atol=1e-3)  # earlier blocks guess otherwise
    prompt = bytes(x[0].tolist()).decode()
    inspection = inspect_next(model, ByteTokenizer(), prompt, position=7)
    assert [len(block) for block in inspection.lens] == [5] * CONFIG.num_blocks
    assert inspection.lens[-1][0].id == int(logits[0, 7].argmax())
    assert inspection.lens[-1][0].prob == pytest.approx(float(lens[-1].max()), abs=1e-6)


def test_a_model_blind_to_its_context_has_a_flat_position_curve() -> None:
    """With no attention output and no position embedding, every position's loss is the same
    on the same tokens, and the context gain is zero."""
    model = trained_like_model()
    assert model.position_embedding is not None, "the lesson's learned positions"
    with torch.no_grad():
        model.position_embedding.weight.zero_()
        for block in model.blocks:
            assert isinstance(block, Block)
            block.attention.proj.weight.zero_()
    x = torch.full((4, 16), 65)
    x[1], x[2] = 66, 67
    y = x.roll(-1, dims=0)  # each row's targets: another constant token
    per_position = model.token_losses(x, y).mean(dim=0).tolist()
    assert max(per_position) - min(per_position) < 1e-5
    assert context_gain(per_position) == pytest.approx(0.0, abs=1e-5)


def test_token_losses_average_to_the_models_loss() -> None:
    """token_losses is the per-position form of the lesson's loss: its mean is forward's loss."""
    model = trained_like_model()
    x = torch.randint(0, 256, (3, 16), generator=torch.Generator().manual_seed(4))
    y = torch.randint(0, 256, (3, 16), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        _, loss = model(x, y)
    assert loss is not None
    assert float(model.token_losses(x, y).mean()) == pytest.approx(loss.item(), abs=1e-5)


def test_context_gain_is_early_minus_late() -> None:
    """The gain is the first quarter's mean loss minus the last quarter's."""
    assert context_gain([4.0, 4.0, 3.0, 3.0, 2.0, 2.0, 1.0, 1.0]) == pytest.approx(3.0)
    assert context_gain([2.0]) is None


def random_rotation(size: int, seed: int) -> torch.Tensor:
    """A random orthogonal matrix (size, size)."""
    q, _ = torch.linalg.qr(torch.randn(size, size, generator=torch.Generator().manual_seed(seed)))
    return q


def test_a_rotated_embedding_space_draws_the_same_map() -> None:
    """Rotating every embedding by one orthogonal matrix leaves the map where it was, with or
    without a previous map to align to."""
    weight = torch.randn(50, 32, generator=torch.Generator().manual_seed(6))
    ids = list(range(0, 50, 2))
    rotated = weight @ random_rotation(32, 7)
    first = torch.tensor(embedding_map(weight, ids))
    torch.testing.assert_close(torch.tensor(embedding_map(rotated, ids)), first, atol=1e-5, rtol=0)
    previous = {i: (float(x), float(y)) for i, (x, y) in zip(ids, first, strict=True)}
    again = torch.tensor(embedding_map(rotated, ids, previous))
    torch.testing.assert_close(again, first, atol=1e-5, rtol=0)


def test_the_map_turns_onto_the_previous_one() -> None:
    """A map whose axes came out turned is turned back onto the previous eval's."""
    weight = torch.randn(40, 16, generator=torch.Generator().manual_seed(8))
    ids = list(range(40))
    first = embedding_map(weight, ids)
    angle = 0.7
    turn = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    turned = {i: tuple((torch.tensor(p) @ turn).tolist()) for i, p in zip(ids, first, strict=True)}
    aligned = torch.tensor(embedding_map(weight, ids, turned))
    torch.testing.assert_close(aligned, torch.tensor([turned[i] for i in ids]), atol=1e-5, rtol=0)

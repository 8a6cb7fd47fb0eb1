"""Head roles on hand-built models whose answer is known: a previous-token head scores near 1
on that score, an induction head near 1 on its own, and heads that attend evenly score chance."""

import pytest
import torch

from minigpt.learned.heads import (
    REPEATS,
    head_scores,
    induction_chance,
    repeat_length,
    repeated_random,
)
from minigpt.learned.probe import score_probe
from minigpt.model import Block, Model
from tests.tiny import lessons_model

V, T = 16, 32  # vocabulary, context
K = V + T + V  # features: the token, its position, the token before it
D = 2 * K  # each feature f is +1 at dim f and -1 at dim K + f: every vector has mean 0
TOKEN, POSITION, PREVIOUS = 0, V, V + T  # where each kind of feature starts


def feature(f: int) -> torch.Tensor:
    """Feature f as a residual-stream direction (mean 0, so LayerNorm only rescales it)."""
    v = torch.zeros(D)
    v[f], v[K + f] = 1.0, -1.0
    return v


def induction_model() -> Model:
    """Two blocks of attention only: block 0's head 0 looks one token back and writes that
    token into the stream; block 1's head 0 looks for the place just after an earlier copy
    of the current token. Every head 1, and both feed-forward layers, are zero."""
    # The lesson's learned positions: the table is built on below.
    model = Model(lessons_model(context_length=T, d_model=D, num_heads=2, num_blocks=2), V)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        blocks = [block for block in model.blocks if isinstance(block, Block)]
        for ln in [model.ln_final, *(m for b in blocks for m in (b.ln1, b.ln2))]:
            ln.weight.fill_(1.0)
        for token in range(V):
            model.token_embedding.weight[token] = feature(TOKEN + token)
        assert model.position_embedding is not None, "the lesson's learned positions"
        for t in range(T):
            model.position_embedding.weight[t] = feature(POSITION + t)
        previous_head, induction_head = blocks[0].attention, blocks[1].attention
        q, k, v = (slice(i * D, i * D + K) for i in range(3))  # head 0's rows of q, k and v
        # Block 0, head 0: the query at position p matches the key of position p - 1.
        for t in range(T):
            previous_head.qkv.weight[q][t, POSITION + t] = 5.0
            if t + 1 < T:
                previous_head.qkv.weight[k][t + 1, POSITION + t] = 1.0
        # ... and copies that position's token into the PREVIOUS features.
        scale = 2 / D**0.5  # undoes ln1's scaling of a vector of two features
        for i in range(V):
            previous_head.qkv.weight[v][i, TOKEN + i] = 1.0
            previous_head.proj.weight[:, i] = feature(PREVIOUS + i) * scale
        # Block 1, head 0: the current token's query matches a key whose PREVIOUS is that token.
        for i in range(V):
            induction_head.qkv.weight[q][i, TOKEN + i] = 8.0
            induction_head.qkv.weight[k][i, PREVIOUS + i] = 1.0
        # Position 0 looked back at itself in block 0, so its PREVIOUS is its own token: a
        # last query dimension, the same at every position, keeps block 1 from it.
        induction_head.qkv.weight[q][K - 1, TOKEN : TOKEN + V] = 1.0
        induction_head.qkv.weight[k][K - 1, POSITION] = -20.0
    return model.eval()


@pytest.fixture(scope="module")
def scores() -> list[list]:
    """The hand-built model's head scores, on a probe of random tokens."""
    model = induction_model()
    probe = torch.randint(0, V, (200,), generator=torch.Generator().manual_seed(0)).tolist()
    attention = score_probe(model, probe, with_attention=True).attention
    return head_scores(model, attention, list(range(V)))


def test_the_previous_token_head_scores_near_one(scores: list[list]) -> None:
    """Block 0's head 0 attends one token back: previous-token score near 1, entropy near 0."""
    head = scores[0][0]
    assert head.previous_token > 0.95
    assert head.entropy < 0.2
    assert head.induction < 0.05  # one back is never the place after the earlier copy


def test_the_induction_head_scores_near_one(scores: list[list]) -> None:
    """Block 1's head 0 finds the token after the earlier copy: induction score near 1."""
    assert scores[1][0].induction > 0.99


def test_heads_that_attend_evenly_score_chance(scores: list[list]) -> None:
    """Every head 1 attends evenly to what it sees: induction and previous-token at chance."""
    chance_previous = sum(1 / (p + 1) for p in range(1, T)) / (T - 1)
    for block in scores:
        even = block[1]
        assert even.induction == pytest.approx(induction_chance(repeat_length(T, V)), rel=1e-4)
        assert even.previous_token == pytest.approx(chance_previous, rel=1e-4)


def test_repeats_are_two_copies_without_repeats_inside_a_copy() -> None:
    """Each random row is one half twice, with no token twice in a half."""
    rows = repeated_random(list(range(V)), T // 2, REPEATS)
    assert rows.shape == (REPEATS, T)
    assert torch.equal(rows[:, : T // 2], rows[:, T // 2 :])
    assert all(len(set(row[: T // 2].tolist())) == T // 2 for row in rows)

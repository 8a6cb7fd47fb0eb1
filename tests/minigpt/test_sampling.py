"""Confidence: the probability of each drawn token, per token, per text piece, per event."""

import json
import math

import pytest
import torch

from minigpt.config import Config, ModelConfig, apply_values
from minigpt.events import SampleDoneEvent, SampleTokenEvent, decode
from minigpt.model import Model
from minigpt.sampling import Completion
from minigpt.service.sample_queue import SampleQueue
from minigpt.tokenizer import ByteTokenizer


@pytest.fixture
def model() -> Model:
    """A tiny seeded model over the 256 bytes, in eval mode."""
    torch.manual_seed(0)
    config = ModelConfig(context_length=64, d_model=32, num_heads=4, num_blocks=2, dropout=0.0)
    return Model(config, ByteTokenizer.vocab_size).eval()


def sample_config(**values: object) -> Config:
    """A config whose [sample] settings are these."""
    return apply_values(Config(), {f"sample.{key}": v for key, v in values.items()})


def by_hand(logits: list[float], temperature: float, top_k: int, top_p: float) -> list[float]:
    """The distribution sampling draws from, in plain Python: scale, keep the top_k, keep
    the likeliest tokens until those above one already cover top_p, softmax what is kept."""
    scaled = [z / temperature for z in logits]
    ranked = sorted(range(len(scaled)), key=lambda i: -scaled[i])[: top_k or len(scaled)]
    peak = scaled[ranked[0]]
    weights = [math.exp(scaled[i] - peak) for i in ranked]
    kept, covered = [], 0.0
    for i, weight in zip(ranked, weights, strict=True):
        if covered > top_p:
            break
        kept.append(i)
        covered += weight / sum(weights)
    total = sum(math.exp(scaled[i] - peak) for i in kept)
    probs = [0.0] * len(logits)
    for i in kept:
        probs[i] = math.exp(scaled[i] - peak) / total
    return probs


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [(1.0, 0, 1.0), (0.7, 5, 0.8)])
def test_each_probability_is_the_filtered_softmax_at_that_step(
    model: Model, temperature: float, top_k: int, top_p: float
) -> None:
    """Each drawn token comes with its probability under the distribution it was drawn
    from (after temperature, top-k and top-p), as computed by hand from the logits."""
    generator = torch.Generator().manual_seed(3)
    x = torch.tensor([[104, 105]])
    drawn = model.stream(
        x, 30, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
    )
    for token, prob in drawn:
        with torch.no_grad():
            logits = model(x)[0][0, -1].tolist()
        expected = by_hand(logits, temperature, top_k, top_p)
        assert prob.shape == (1, 1) and expected[int(token)] > 0
        assert float(prob) == pytest.approx(expected[int(token)], rel=1e-4, abs=1e-6)
        x = torch.cat([x, token], dim=1)


def test_greedy_tokens_are_drawn_with_probability_one(model: Model) -> None:
    """At temperature 0 the argmax is taken for sure: every token and piece has 1.0."""
    x = torch.tensor([[104]])
    assert all(float(p) == 1.0 for _, p in model.stream(x, 20, temperature=0.0))
    completion = Completion(
        model, ByteTokenizer(), sample_config(prompt="h", temperature=0.0).sample
    )
    assert {p for text, p in completion.spans() if text} == {1.0}


def test_spans_keep_the_tokens_and_text_and_multiply_split_characters(model: Model) -> None:
    """Asking for probabilities changes no token or text; the pieces concatenate to the
    text, and a character split over tokens carries the product of their probabilities."""
    settings = sample_config(prompt="hi", max_new_tokens=60, temperature=1.5).sample
    plain = "".join(Completion(model, ByteTokenizer(), settings, seed=5))
    completion = Completion(model, ByteTokenizer(), settings, seed=5)
    spans = list(completion.spans())
    assert "".join(text for text, _ in spans) == plain and completion.tokens == 60
    assert all((p is None) == (text == "") for text, p in spans)
    assert any(text == "" for text, _ in spans), "random bytes should split a character"
    generator = torch.Generator().manual_seed(5)
    drawn = list(model.stream(torch.tensor([[104, 105]]), 60, temperature=1.5, generator=generator))
    expected = torch.tensor([104, 105] + [int(t) for t, _ in drawn])
    assert torch.equal(
        model.generate(
            torch.tensor([[104, 105]]),
            60,
            temperature=1.5,
            generator=torch.Generator().manual_seed(5),
        )[0],
        expected,
    )
    every_token = math.prod(float(p) for _, p in drawn)
    assert math.prod(p for _, p in spans if p is not None) == pytest.approx(every_token, rel=1e-6)


def test_sample_events_carry_spans_that_make_up_their_text(model: Model) -> None:
    """Each sample_token's spans concatenate to its text, and sample_done holds them all."""
    pieces: list[SampleTokenEvent] = []
    finished: list[SampleDoneEvent] = []
    queue = SampleQueue(on_text=pieces.append, on_done=finished.append)
    config = sample_config(prompt="hi", max_new_tokens=40, temperature=1.0)
    queue.add("one", 1, model, ByteTokenizer(), config, seed=2, step=0)
    while queue:
        queue.stream(0.0)
    (done,) = finished
    assert pieces and all("".join(t for t, _ in p.spans) == p.text for p in pieces)
    assert done.spans == [span for p in pieces for span in p.spans]
    assert "".join(t for t, _ in done.spans) == done.text
    assert all(p is None or 0 < p <= 1 for _, p in done.spans)
    assert decode(json.dumps(done.to_dict())) == done


def test_older_and_hostile_span_lines_decode() -> None:
    """Lines without spans read as no spans; NaN, junk and ragged entries read as what fits."""
    old = {"event": "sample_token", "id": "a", "text": "hi", "tokens_per_sec": 1.0, "step": 0}
    token = decode(old)
    assert isinstance(token, SampleTokenEvent) and token.spans == []
    hostile = '[["h", NaN], ["i"], "x", [1, 0.5], ["!", 0.5, 9], ["?", "sure"], null]'
    line = json.dumps(old)[:-1] + f', "spans": {hostile}}}'
    token = decode(line)
    assert isinstance(token, SampleTokenEvent)
    assert token.spans == [("h", None), ("i", None), ("", 0.5), ("!", 0.5), ("?", None)]

"""One eval's record of what the model has learned, as plain JSON-ready values.

`LearnedViews` is made once per run from its corpus: the probe passage (a fixed
stretch of the validation text), the tokens the embedding map shows (the training
text's most frequent, which the induction test also draws from). At each eval
`record` measures the model as it is then, as a `LearnedEvent` (its fields are in
minigpt/events.py): the probe's losses and top guesses, the val loss by position and
the context gain, the heads' roles and the embedding map.

What is the same at every eval is kept once per run (`probe()`): the probe's token
ids and text, and the readable text of every token id, which the records' ids index.
Numbers are rounded to what a reader can see, to keep a record small.
"""

from __future__ import annotations

from typing import Any

import torch

from minigpt.batches import Corpus
from minigpt.events import LearnedEvent, MapPoints
from minigpt.inspection import readable_token
from minigpt.learned.embedding_map import MAP_TOKENS, embedding_map
from minigpt.learned.heads import head_scores
from minigpt.learned.probe import TOP_GUESSES, choose_probe, score_probe
from minigpt.model import Model
from minigpt.tokenizer import Tokenizer


def context_gain(position_loss: list[float]) -> float | None:
    """How much a long context helps: the first quarter of positions' mean loss minus the
    last quarter's (None with fewer than two positions)."""
    if len(position_loss) < 2:
        return None
    quarter = max(1, len(position_loss) // 4)
    early, late = position_loss[:quarter], position_loss[-quarter:]
    return sum(early) / len(early) - sum(late) / len(late)


def most_frequent(ids: torch.Tensor, vocab_size: int, count: int) -> list[int]:
    """The count most frequent token ids of ids (1-D), most frequent first."""
    counts = torch.bincount(ids.long(), minlength=vocab_size)
    order = torch.argsort(counts, descending=True, stable=True)
    return [int(i) for i in order[:count] if counts[i] > 0]


class LearnedViews:
    """The run's fixed probe and map tokens, and the previous map to align the next one with."""

    def __init__(self, tokenizer: Tokenizer, probe: list[int], map_ids: list[int]) -> None:
        """Measure with this probe passage and these map tokens."""
        self.tokenizer = tokenizer
        self.probe_ids = probe
        self.map_ids = map_ids
        self.previous_map: dict[int, tuple[float, float]] | None = None

    @classmethod
    def for_corpus(
        cls, corpus: Corpus, seed: int, context: int, probe: list[int] | None = None
    ) -> LearnedViews:
        """The views of a run on corpus, with a model of this context length: a kept probe
        (a resumed run's), or one the seed picks."""
        if probe is None:
            probe = choose_probe(corpus.val, corpus.tokenizer, seed, context)
        vocab_size = corpus.tokenizer.vocab_size
        return cls(corpus.tokenizer, probe, most_frequent(corpus.train, vocab_size, MAP_TOKENS))

    def probe(self) -> dict[str, Any]:
        """What every record refers to, kept once per run: the probe's token ids and their
        readable text, and every token id's readable text (`vocab`)."""
        vocab = [
            readable_token(self.tokenizer.token_bytes(i)) for i in range(self.tokenizer.vocab_size)
        ]
        return {"ids": self.probe_ids, "text": [vocab[i] for i in self.probe_ids], "vocab": vocab}

    def follow(self, record: LearnedEvent) -> None:
        """Align the next map with this earlier record's (a resumed run's last one)."""
        points = record.embedding_map
        self.previous_map = {
            i: (x, y)
            for i, x, y in zip(points.ids, points.x, points.y, strict=False)
            if i is not None and x is not None and y is not None
        }

    def record(self, model: Model, step: int, position_loss: list[float]) -> LearnedEvent:
        """What the model knows at this step, measured now."""
        score = score_probe(model, self.probe_ids, with_attention=True)
        heads = head_scores(model, score.attention, self.map_ids or [0])
        xy = embedding_map(model.token_embedding.weight, self.map_ids, self.previous_map)
        self.previous_map = dict(zip(self.map_ids, xy, strict=True))
        guesses = [row + [(None, None)] * (TOP_GUESSES - len(row)) for row in score.guesses]
        return LearnedEvent(
            step=step,
            probe_loss=[None if loss is None else round(loss, 3) for loss in score.loss],
            guess_ids=[i for row in guesses for i, _ in row],
            guess_probs=[None if p is None else round(p, 3) for row in guesses for _, p in row],
            position_loss=[round(loss, 4) for loss in position_loss],
            context_gain=context_gain(position_loss),
            heads=heads,
            embedding_map=MapPoints(
                ids=list(self.map_ids),
                x=[round(x, 4) for x, _ in xy],
                y=[round(y, 4) for _, y in xy],
            ),
        )

"""Text in, streamed text out: the lesson's generate, wrapped for people.

A `Completion` encodes a prompt, samples with the [sample] settings and,
iterated, yields decoded text as soon as whole characters are available (a
token may end in the middle of a multi-byte character, which is held back
until complete). It counts the tokens it produced, so callers can report
tokens/s, and says how much of a long prompt was cropped to fit the context.
Its `spans` also give, with each piece, the probability the model gave the
tokens behind it when it drew them, so a reader can see where it was guessing.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from minigpt.config import SampleConfig
from minigpt.errors import TokenizerError
from minigpt.model import Model
from minigpt.tokenizer import StreamDecoder, Tokenizer


class Completion:
    """A streaming completion of settings.prompt; iterate it for text pieces."""

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        settings: SampleConfig,
        seed: int | None = None,
        use_cache: bool = True,
    ) -> None:
        """Encode the prompt (raising TokenizerError for text the vocabulary lacks)."""
        ids = tokenizer.encode(settings.prompt)
        if not ids:
            raise TokenizerError("the prompt is empty; give it at least one character")
        self.prompt_tokens = len(ids)
        self.prompt_cropped = max(0, len(ids) - model.config.context_length)
        self.tokens = 0
        device = next(model.parameters()).device
        generator = torch.Generator(device=device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        self._decoder = StreamDecoder(tokenizer)
        self._stream = model.stream(
            torch.tensor([ids], dtype=torch.long, device=device),
            settings.max_new_tokens,
            temperature=settings.temperature,
            top_k=settings.top_k,
            top_p=settings.top_p,
            generator=generator,
            use_cache=use_cache,
        )

    def __iter__(self) -> Iterator[str]:
        """Yield completion text piece by piece (a piece may be empty mid-character)."""
        for text, _ in self.spans():
            yield text

    def spans(self) -> Iterator[tuple[str, float | None]]:
        """Yield, for each token drawn, the text it completes and the probability of
        drawing the tokens behind that text: their product, as a character split over
        several tokens comes out with its last one. Mid-character: ("", None)."""
        behind = 1.0  # probability of the tokens drawn since the last text came out
        for token, prob in self._stream:
            self.tokens += 1
            text = self._decoder.feed(int(token[0, 0]))
            behind *= float(prob[0, 0])
            if text:
                yield text, behind
                behind = 1.0
            else:
                yield "", None
        if tail := self._decoder.flush():  # a dangling partial character, as U+FFFD
            yield tail, behind

    def close(self) -> None:
        """Stop early (cancel), restoring the model's mode."""
        self._stream.close()

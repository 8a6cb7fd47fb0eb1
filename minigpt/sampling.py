"""Text in, streamed text out: the lesson's generate, wrapped for people.

`sample_text` encodes a prompt, samples with the [sample] settings and yields
decoded text as soon as whole characters are available (a token may end in
the middle of a multi-byte character, which is held back until complete).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from minigpt.config import SampleConfig
from minigpt.errors import TokenizerError
from minigpt.model import Model
from minigpt.tokenizer import StreamDecoder, Tokenizer


def sample_text(
    model: Model,
    tokenizer: Tokenizer,
    settings: SampleConfig,
    seed: int | None = None,
    use_cache: bool = True,
) -> Iterator[str]:
    """Yield the completion of settings.prompt piece by piece."""
    ids = tokenizer.encode(settings.prompt)
    if not ids:
        raise TokenizerError("the prompt is empty; give it at least one character")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    decoder = StreamDecoder(tokenizer)
    tokens = model.stream(
        torch.tensor([ids], dtype=torch.long, device=device),
        settings.max_new_tokens,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        generator=generator,
        use_cache=use_cache,
    )
    for token in tokens:
        if piece := decoder.feed(int(token[0, 0])):
            yield piece
    if tail := decoder.flush():
        yield tail

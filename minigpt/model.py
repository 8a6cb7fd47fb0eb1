"""The GPT from the lesson: Model, Block, MultiHeadAttention, FeedForward.

The model knows nothing about text: it maps token ids (B, T) to next-token
logits (B, T, vocab_size) and, given targets, the mean cross-entropy loss, as
the lesson's `forward(x, y=None) -> (logits, loss)` does.

Differences from the lesson's hand-written version, all for speed or for the
behaviour of well-known small GPTs (GPT-2, nanoGPT):
- the heads share one query/key/value projection and run through fused
  `scaled_dot_product_attention` instead of one `Head` module per head (an
  explicit path, which keeps the attention weights, serves inspection);
- pre-norm blocks, no biases in the linear layers;
- the output layer shares its weight with the token embedding (weight tying),
  weights start at N(0, 0.02) as GPT-2's do, and the residual projections at
  zero, so each block starts as the identity;
- `generate` keeps the lesson's steps (crop, last position, temperature,
  softmax, multinomial, append) and adds top-k, top-p, greedy decoding at
  temperature 0 (minigpt/next_token.py), an explicit random generator, and a KV cache.

The speedruns' levers are switches of [model]: `activation` (relu, relu2, gelu),
`position` (learned table or rotary, minigpt/rotary.py), `qk_norm`, `logit_softcap`
(every logit goes through `Model.logits` or the chunked losses, which apply it alike) and
`residual_scalars`. Two are on by default, rotary positions and qk_norm, because together
they reach a given loss in two thirds of the lesson model's steps here (docs/benchmarks.md);
`position = "learned"` with `qk_norm = false` is the lesson's model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from minigpt.config import ModelConfig
from minigpt.linear_cross_entropy import capped_logits, linear_cross_entropy, token_cross_entropy
from minigpt.next_token import sample_next
from minigpt.rotary import rotary_tables, rotate

# When a generated sequence outgrows context_length, the window jumps forward
# to keep only this fraction of it instead of sliding by one token. Sliding by
# one would change every cached key (positions shift), forcing a full
# recompute per token; jumping lets the KV cache serve the next quarter of the
# context. Both cached and uncached generation use the same window, so they
# produce the same text.
WINDOW_KEEP = 0.75


class KVCache:
    """Keys and values of every block for the tokens seen so far, preallocated."""

    def __init__(self, model: Model, batch_size: int) -> None:
        """Allocate room for context_length positions in each block."""
        c = model.config
        shape = (c.num_blocks, batch_size, c.num_heads, c.context_length, c.d_model // c.num_heads)
        param = next(model.parameters())
        self.keys = torch.zeros(shape, dtype=param.dtype, device=param.device)
        self.values = torch.zeros_like(self.keys)
        self.length = 0  # positions filled in every block

    def append(self, block: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Store a block's new keys/values (B, nh, T, hs); return all so far."""
        start, end = self.length, self.length + k.size(2)
        assert end <= self.keys.size(3), "KV cache overflow: the window must be cropped first"
        self.keys[block, :, :, start:end] = k
        self.values[block, :, :, start:end] = v
        return self.keys[block, :, :, :end], self.values[block, :, :, :end]


def relu2(x: torch.Tensor) -> torch.Tensor:
    """Squared ReLU (So et al. 2021, "Primer"; the modded-nanogpt speedrun's activation)."""
    return F.relu(x).square()


# model.activation -> the function. "gelu" is the exact, erf-based GELU: transformers'
# "gelu", not GPT-2's tanh approximation ("gelu_new").
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "relu2": relu2,
    "gelu": F.gelu,
}


class FeedForward(nn.Module):
    """Position-wise MLP: expand to 4 * d_model, activate, project back, as the lesson does.

    ReLU by default, not GPT-2's GELU: at nanoGPT's CPU setting (char tinyshakespeare,
    2,000 steps) it reached val loss 1.815 / 1.822 / 1.836 against GELU's 1.897 / 1.903 /
    1.929 for seeds 1337 / 1 / 2 (docs/benchmarks.md).
    """

    def __init__(self, config: ModelConfig) -> None:
        """Build the two linear layers."""
        super().__init__()
        self.up = nn.Linear(config.d_model, 4 * config.d_model, bias=False)
        self.activation = ACTIVATIONS[config.activation]
        self.down = nn.Linear(4 * config.d_model, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T, C)."""
        return self.dropout(self.down(self.activation(self.up(x))))


class MultiHeadAttention(nn.Module):
    """Causal self-attention, all heads in one fused kernel.

    With model.qk_norm each head's queries and keys go through a LayerNorm of the head's
    size with no learned weights (QK-layernorm, as Persimmon has it, so such a model
    exports as one) before rotary and the product; the scores keep the 1 / sqrt(hs) scale,
    so with q and k at unit variance they lie within +-sqrt(hs).
    """

    def __init__(self, config: ModelConfig) -> None:
        """Build the shared q/k/v projection and the output projection."""
        super().__init__()
        assert config.d_model % config.num_heads == 0, "num_heads must divide d_model"
        self.num_heads = config.num_heads
        self.qk_norm = config.qk_norm
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
        block: int = 0,
        weights: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(B, T, C) -> (B, T, C); with a cache, attend to the cached positions too.

        `rope` is the rotary cos and sin (T, hs) of x's positions (None: no rotary).
        Given a `weights` list, the attention is computed step by step, as the
        lesson's `Head` does, and its weights (B, nh, T, T) are appended to it:
        slower than the fused kernel, for looking inside an eval-mode model.
        """
        B, T, C = x.shape
        nh, hs = self.num_heads, C // self.num_heads
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        if self.qk_norm:
            # eps is nn.LayerNorm's, as the blocks' norms have it: one layer_norm_eps exports
            q, k = F.layer_norm(q, (hs,)), F.layer_norm(k, (hs,))  # each (B, nh, T, hs)
        if rope is not None:  # keys are cached rotated, at the positions they were fed at
            q, k = rotate(q, *rope), rotate(k, *rope)  # each (B, nh, T, hs)
        if cache is not None:
            # A multi-token chunk is only ever fed into an empty cache (the
            # prompt), so the plain causal mask is right; one new token may
            # see every cached position, so it needs no mask at all.
            assert T == 1 or cache.length == 0, "prefill needs an empty cache"
            k, v = cache.append(block, k, v)  # (B, nh, T_past + T, hs)
        if weights is None:
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=T > 1
            )  # (B, nh, T, hs)
        else:
            assert cache is None and not self.training, "explicit attention is for eval, uncached"
            att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, nh, T, T)
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)  # (T, T)
            att = F.softmax(att.masked_fill(future, float("-inf")), dim=-1)  # (B, nh, T, T)
            weights.append(att)
            y = att @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.proj(y))


class Block(nn.Module):
    """One transformer block: attention then feed-forward, each on a residual path."""

    def __init__(self, config: ModelConfig) -> None:
        """Build the two sublayers and their layer norms."""
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attention = MultiHeadAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.feed_forward = FeedForward(config)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
        block: int = 0,
        weights: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(B, T, C) -> (B, T, C); `rope` and `weights` as for MultiHeadAttention."""
        x = x + self.attention(self.ln1(x), rope, cache, block, weights)
        return x + self.feed_forward(self.ln2(x))


class Model(nn.Module):
    """A decoder-only transformer language model."""

    rope_cos: torch.Tensor  # rotary's buffers (position = "rotary"), (context_length, hs)
    rope_sin: torch.Tensor

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        """Build embeddings, blocks and the (tied) output layer, and initialise weights."""
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, config.d_model)
        learned = config.position == "learned"
        self.position_embedding = (
            nn.Embedding(config.context_length, config.d_model) if learned else None
        )
        if not learned:  # rotary; the tables are not saved: made from the config, like the shapes
            cos, sin = rotary_tables(config.context_length, config.d_model // config.num_heads)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_blocks))
        self.ln_final = nn.LayerNorm(config.d_model)
        self.lm_head = nn.Linear(config.d_model, vocab_size, bias=False)
        self.lm_head.weight = self.token_embedding.weight
        self.apply(self._init_weights)
        # The two layers that write back into the residual stream start at zero, so each
        # block starts as the identity and the model as a bigram (the modded-nanogpt
        # speedrun's choice); on nanoGPT's CPU setting it reached the target loss sooner
        # than GPT-2's scaled N(0, 0.02 / sqrt(2 * num_blocks)) (docs/benchmarks.md).
        for block in self.blocks:
            assert isinstance(block, Block)
            nn.init.zeros_(block.attention.proj.weight)
            nn.init.zeros_(block.feed_forward.down.weight)
        if config.residual_scalars:
            # nanochat's: before block i, h = resid_lambdas[i] * h + x0_lambdas[i] * x0,
            # x0 the embeddings; they start as the plain residual stream.
            self.resid_lambdas = nn.Parameter(torch.ones(config.num_blocks))
            self.x0_lambdas = nn.Parameter(torch.zeros(config.num_blocks))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2's initialisation: N(0, 0.02) for linear and embedding weights."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def num_params(self) -> int:
        """Parameters counted once (the tied output layer is the embedding)."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        cache: KVCache | None = None,
        attention: list[torch.Tensor] | None = None,
        residuals: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Token ids (B, T) -> logits (B, T, vocab) and, given targets y (B, T), the loss.

        Given an `attention` list (eval mode, no cache), each block appends its
        attention weights (B, nh, T, T) to it, computed explicitly instead of fused.
        Given a `residuals` list, each block appends the residual stream (B, T, C) it
        leaves behind, before the final layer norm (the logit lens reads these).
        """
        B, T = x.shape
        logits = self.logits(self._hidden(x, cache, attention, residuals))  # (B, T, vocab)
        if y is None:
            return logits, None
        loss = F.cross_entropy(logits.view(B * T, -1), y.view(B * T))
        return logits, loss

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """The output layer: final vectors (..., C) -> logits (..., vocab), soft-capped when
        model.logit_softcap asks; everything that reads logits off vectors comes here."""
        return capped_logits(h, self.lm_head.weight, self.config.logit_softcap)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """forward(x, y)'s loss without materialising every logit (see linear_cross_entropy)."""
        B, T = x.shape
        h = self._hidden(x).view(B * T, -1)  # (B*T, C)
        cap = self.config.logit_softcap
        return linear_cross_entropy(h, self.lm_head.weight, y.view(B * T), cap)

    def final_hidden(
        self, x: torch.Tensor, attention: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Token ids (B, T) -> the vectors (B, T, C) the output layer reads, for a caller
        that needs the logits of only some positions (`attention` as in forward)."""
        return self._hidden(x, None, attention)

    def token_losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each position's loss (B, T), without gradients: what the mean loss averages."""
        B, T = x.shape
        h = self._hidden(x).view(B * T, -1)  # (B*T, C)
        cap = self.config.logit_softcap
        return token_cross_entropy(h, self.lm_head.weight, y.view(B * T), cap).view(B, T)

    def _hidden(
        self,
        x: torch.Tensor,
        cache: KVCache | None = None,
        attention: list[torch.Tensor] | None = None,
        residuals: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Token ids (B, T) -> the final layer-normed vectors (B, T, C) the output layer reads."""
        T = x.size(1)
        start = cache.length if cache is not None else 0
        assert start + T <= self.config.context_length, (
            f"sequence of {start + T} exceeds context_length {self.config.context_length}"
        )
        h = self.token_embedding(x)  # (B, T, C)
        rope = None
        if self.position_embedding is not None:
            h = h + self.position_embedding(torch.arange(start, start + T, device=x.device))
        else:  # rotary: the angles of positions start .. start + T - 1
            rope = (self.rope_cos[start : start + T], self.rope_sin[start : start + T])  # (T, hs)
        h = x0 = self.dropout(h)  # (B, T, C)
        for i, block in enumerate(self.blocks):
            if self.config.residual_scalars:
                h = self.resid_lambdas[i] * h + self.x0_lambdas[i] * x0  # (B, T, C)
            h = block(h, rope, cache, i, attention)
            if residuals is not None:
                residuals.append(h)
        if cache is not None:
            cache.length += T
        return self.ln_final(h)

    @torch.no_grad()
    def stream(
        self,
        x: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> Generator[tuple[torch.Tensor, torch.Tensor], None, None]:
        """Yield each new token (B, 1) as it is sampled after the prompt x (B, T), with
        the probability (B, 1) it had in the distribution it was drawn from.

        The model is put in eval mode while generating and restored afterwards,
        and sampling draws only from `generator` (a fresh, unseeded one when
        None), so generating never disturbs a training run's random state.
        """
        assert x.size(1) >= 1, "the prompt needs at least one token"
        if generator is None:
            generator = torch.Generator(device=x.device)
            generator.seed()
        was_training = self.training
        self.eval()
        try:
            context = self.config.context_length
            window_start = max(0, x.size(1) - context)  # the lesson's crop
            cache = KVCache(self, x.size(0)) if use_cache else None
            fed = 0  # tokens of the current window already in the cache
            for _ in range(max_new_tokens):
                if x.size(1) - window_start > context:
                    window_start = x.size(1) - int(context * WINDOW_KEEP)
                    fed = 0
                window = x[:, window_start:]  # (B, <= context)
                if cache is None:
                    logits, _ = self(window)
                else:
                    if fed == 0:
                        cache.length = 0
                    logits, _ = self(window[:, fed:], cache=cache)
                    fed = window.size(1)
                x_next, p_next = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)
                x = torch.cat([x, x_next], dim=1)
                yield x_next, p_next
        finally:
            self.train(was_training)

    def generate(self, x: torch.Tensor, max_new_tokens: int, **options: Any) -> torch.Tensor:
        """The lesson's generate: the prompt (B, T) followed by max_new_tokens new tokens;
        options as stream's."""
        new = [token for token, _ in self.stream(x, max_new_tokens, **options)]
        return torch.cat([x, *new], dim=1)

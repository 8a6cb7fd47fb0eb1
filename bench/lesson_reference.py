"""The lesson's training code, written out as taught: the yardstick for minigpt's speed.

A benchmark fixture, not part of the package. It follows the course's model.py
and train.py (the lesson in shared/seed covers train.py and generate; the model
is the one it builds on):

- a `Head` module per attention head, each with its own key/query/value
  layers, scores masked with `masked_fill` on a lower-triangular buffer and
  softmaxed; `MultiHeadAttention` concatenates the heads and projects;
- `FeedForward` (Linear, ReLU, Linear, Dropout), pre-norm `Block`s, a final
  LayerNorm and an output layer as wide as the vocabulary;
- sine/cosine position encodings computed in `forward`;
- cl100k_base over its full 100,277-token vocabulary (or, for nanoGPT's
  setting, one id per character of the corpus);
- `get_batch` with a list comprehension and `torch.stack`, `estimate_loss`
  averaging eval_iters batches, plain `AdamW(model.parameters(), lr=...)`,
  and the loop: eval every eval_interval steps, get_batch, forward,
  zero_grad(set_to_none=True), backward, step.

Only the input (the offline cl100k_base file minigpt ships, the same tokens as
`tiktoken.get_encoding`) and the timing around the loop are added.

    python bench/lesson_reference.py --data FILE [--tokenizer cl100k_base|char]
        [--context-length 64 --batch-size 12 --d-model 128 --num-heads 4
         --num-blocks 4 --dropout 0.1 --learning-rate 1e-3]
        [--steps 30 --warmup 5]                 timing: one JSON line, as `minigpt bench`
        [--max-iters 2000 --eval-interval 100]  training: one JSON line per eval
"""

# ruff: noqa: RUF059 - the names the lesson writes, used or not, so a learner recognises it

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class FeedForward(nn.Module):
    """Linear, ReLU, Linear, Dropout."""

    def __init__(self, d_model: int, dropout: float) -> None:
        super().__init__()
        self.ffn = nn.Sequential(
            nn.Linear(d_model, 4 * d_model),
            nn.ReLU(),
            nn.Linear(4 * d_model, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(x)


class Head(nn.Module):
    """One head of causal self-attention."""

    def __init__(self, d_model: int, head_size: int, context_length: int, dropout: float) -> None:
        super().__init__()
        self.key_layer = nn.Linear(d_model, head_size, bias=False)
        self.query_layer = nn.Linear(d_model, head_size, bias=False)
        self.value_layer = nn.Linear(d_model, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(context_length, context_length)))
        self.dropout_layer = nn.Dropout(dropout)
        self.head_size = head_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q = self.query_layer(x)
        k = self.key_layer(x)
        v = self.value_layer(x)
        weights = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_size)
        weights = weights.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        weights = F.softmax(weights, dim=-1)
        weights = self.dropout_layer(weights)
        return weights @ v


class MultiHeadAttention(nn.Module):
    """The heads side by side, concatenated, then projected."""

    def __init__(self, d_model: int, num_heads: int, context_length: int, dropout: float) -> None:
        super().__init__()
        head_size = d_model // num_heads
        self.heads = nn.ModuleList(
            [Head(d_model, head_size, context_length, dropout) for _ in range(num_heads)]
        )
        self.projection_layer = nn.Linear(d_model, d_model)
        self.dropout_layer = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([head(x) for head in self.heads], dim=-1)
        return self.dropout_layer(self.projection_layer(out))


class Block(nn.Module):
    """LayerNorm, attention, residual; LayerNorm, feed-forward, residual."""

    def __init__(self, d_model: int, num_heads: int, context_length: int, dropout: float) -> None:
        super().__init__()
        self.layer_norm_1 = nn.LayerNorm(d_model)
        self.layer_norm_2 = nn.LayerNorm(d_model)
        self.multi_head_attention_layer = MultiHeadAttention(
            d_model, num_heads, context_length, dropout
        )
        self.feed_forward_layer = FeedForward(d_model, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.multi_head_attention_layer(self.layer_norm_1(x))
        return x + self.feed_forward_layer(self.layer_norm_2(x))


class Model(nn.Module):
    """Token embeddings plus position encodings, the blocks, the output layer."""

    def __init__(self, vocab_size: int, args: argparse.Namespace) -> None:
        super().__init__()
        self.d_model, self.context_length = args.d_model, args.context_length
        self.token_embedding_lookup_table = nn.Embedding(vocab_size, args.d_model)
        self.transformer_blocks = nn.Sequential(
            *[
                Block(args.d_model, args.num_heads, args.context_length, args.dropout)
                for _ in range(args.num_blocks)
            ],
            nn.LayerNorm(args.d_model),
        )
        self.model_out_linear_layer = nn.Linear(args.d_model, vocab_size)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T = idx.shape
        position_encoding_lookup_table = torch.zeros(self.context_length, self.d_model)
        position = torch.arange(0, self.context_length, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(
            torch.arange(0, self.d_model, 2).float() * (-math.log(10000.0) / self.d_model)
        )
        position_encoding_lookup_table[:, 0::2] = torch.sin(position * div_term)
        position_encoding_lookup_table[:, 1::2] = torch.cos(position * div_term)
        position_embedding = position_encoding_lookup_table[:T, :]
        x = self.token_embedding_lookup_table(idx) + position_embedding
        x = self.transformer_blocks(x)
        logits = self.model_out_linear_layer(x)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        loss = F.cross_entropy(logits.view(B * T, C), targets.view(B * T))
        return logits, loss


def load_tokens(path: str, tokenizer: str) -> tuple[torch.Tensor, int]:
    """The corpus as token ids and the vocabulary size."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if tokenizer == "char":
        chars = sorted(set(text))
        stoi = {ch: i for i, ch in enumerate(chars)}
        return torch.tensor([stoi[ch] for ch in text], dtype=torch.long), len(chars)
    from minigpt.tokenizer import load_cl100k  # the offline cl100k_base file: no download

    encoding = load_cl100k()
    tokenized_text = encoding.encode(text)
    return torch.tensor(tokenized_text, dtype=torch.long), encoding.n_vocab


def main() -> None:
    """Train as the lesson does; print timing or eval lines as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--tokenizer", choices=["cl100k_base", "char"], default="cl100k_base")
    for name, default in [
        ("context-length", 64),
        ("batch-size", 12),
        ("d-model", 128),
        ("num-heads", 4),
        ("num-blocks", 4),
        ("eval-iters", 20),
        ("eval-interval", 100),
        ("max-iters", 0),
        ("steps", 30),
        ("warmup", 5),
        ("threads", 0),
        ("seed", 1337),
    ]:
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data, vocab_size = load_tokens(args.data, args.tokenizer)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]

    def get_batch(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        data = train_data if split == "train" else val_data
        ix = torch.randint(len(data) - args.context_length, (args.batch_size,))
        x = torch.stack([data[i : i + args.context_length] for i in ix])
        y = torch.stack([data[i + 1 : i + args.context_length + 1] for i in ix])
        return x, y

    model = Model(vocab_size, args)

    @torch.no_grad()
    def estimate_loss() -> dict[str, float]:
        out = {}
        model.eval()
        for split in ["train", "valid"]:
            losses = torch.zeros(args.eval_iters)
            for k in range(args.eval_iters):
                x_batch, y_batch = get_batch(split)
                logits, loss = model(x_batch, y_batch)
                losses[k] = loss.item()
            out[split] = losses.mean().item()
        model.train()
        return out

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)

    def train_step() -> None:
        x_batch, y_batch = get_batch("train")
        logits, loss = model(x_batch, y_batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if args.max_iters:  # the lesson's loop, reporting each eval with the wall-clock time
        started = time.perf_counter()
        for step in range(args.max_iters + 1):
            if step % args.eval_interval == 0 or step == args.max_iters:
                losses = estimate_loss()
                seconds = time.perf_counter() - started
                line = {"step": step, "seconds": seconds, "train": losses["train"]}
                print(json.dumps(line | {"val": losses["valid"]}), flush=True)
            if step < args.max_iters:
                train_step()
        return
    for _ in range(args.warmup):
        train_step()
    durations = []
    for _ in range(args.steps):
        began = time.perf_counter()
        train_step()
        durations.append(time.perf_counter() - began)
    tokens_per_step = args.batch_size * args.context_length
    result = {
        "tokens_per_sec": tokens_per_step / statistics.median(durations),
        "ms_per_step_median": statistics.median(durations) * 1000,
        "params": sum(p.numel() for p in model.parameters()),
        "vocab_size": vocab_size,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

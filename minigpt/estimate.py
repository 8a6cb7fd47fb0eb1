"""What a configuration costs before it runs: parameters, tokens, FLOPs and memory per step.

The parameter count follows minigpt.model exactly (a test checks it against a
built Model). FLOPs and memory are estimates, good for comparing configs and
for scaling a measured step time to a new shape, not for exact budgets:
- FLOPs per token: 6 per weight (forward and backward matmuls) plus
  12 * num_blocks * d_model * context_length for attention, the count used by
  the PaLM paper (Chowdhery et al., 2022, appendix B) and nanoGPT's MFU.
- Memory: weights, gradients and the optimizer's state: AdamW's two moments
  (4 numbers a parameter), or with Muon one momentum for the blocks' matrices,
  and one more for the weight average (train.ema_decay > 0),
  plus the activations one micro-batch keeps for backward: per block
  B*T*d_model*(34 + 5*num_heads*T/d_model) bytes at 16 bits (Korthikanti et
  al., 2022, "Reducing Activation Recomputation", section 4.1), doubled for
  32 bits, and the logits with their softmax and gradient; all of it times
  MEMORY_OVERHEAD for the allocator and temporaries. The torch runtime itself
  (a few hundred MB) is not included.
- The [model] switches change the parameter count (rotary has no position table,
  residual_scalars adds two numbers a block); their elementwise work (the activation,
  rotary, qk_norm, the logits' softcap) is left out of FLOPs and memory, as the
  LayerNorms' is.

No torch here: the dashboard imports this.
"""

from __future__ import annotations

from dataclasses import dataclass

from minigpt.config import Config, ModelConfig

BYTES_PER_NUMBER = 4  # float32 weights, gradients, moments and activations
# Peak memory growth over the first training steps was 1.25-1.75x the plain count on
# three CPU settings (python bench/memory_estimate.py; figures in the README); 1.5 centres it.
MEMORY_OVERHEAD = 1.5


@dataclass(frozen=True)
class Footprint:
    """The size of one training step under a config."""

    params: int
    tokens_per_step: int
    flops_per_step: float
    memory_bytes: int


def block_matrix_weights(model: ModelConfig) -> int:
    """The weights in one block's matrices (what Muon updates): q/k/v 3d², attention
    output d², feed-forward 8d²."""
    return 12 * model.d_model**2


def position_weights(model: ModelConfig) -> int:
    """The learned position table's weights (none with rotary positions, which are computed)."""
    return model.context_length * model.d_model if model.position == "learned" else 0


def param_count(model: ModelConfig, vocab_size: int) -> int:
    """Parameters of minigpt.model.Model, the tied output layer counted once."""
    d = model.d_model
    per_block = block_matrix_weights(model) + 4 * d  # and two LayerNorms' weights and biases
    per_block += 2 if model.residual_scalars else 0  # the block's resid and x0 lambdas
    embeddings = vocab_size * d + position_weights(model)
    return embeddings + model.num_blocks * per_block + 2 * d


def footprint(config: Config, vocab_size: int) -> Footprint:
    """Parameters, tokens, FLOPs and memory of one optimiser step under config."""
    m, t = config.model, config.train
    d, T, L, B = m.d_model, m.context_length, m.num_blocks, t.batch_size
    params = param_count(m, vocab_size)
    tokens = B * T * t.grad_accum_steps
    matmul_weights = params - position_weights(m)  # position embeddings are looked up
    flops = tokens * (6 * matmul_weights + 12 * L * d * T)
    muon_matrices = L * block_matrix_weights(m) if t.optimizer == "muon" else 0  # 1 number, not 2
    average = params if t.ema_decay else 0
    training_state = (4 * params - muon_matrices + average) * BYTES_PER_NUMBER
    per_block = 2 * B * T * d * (34 + 5 * m.num_heads * T / d)
    logits = 3 * B * T * vocab_size * BYTES_PER_NUMBER
    return Footprint(
        params=params,
        tokens_per_step=tokens,
        flops_per_step=float(flops),
        memory_bytes=int(MEMORY_OVERHEAD * (training_state + L * per_block + logits)),
    )


# Vocabulary sizes that do not depend on the corpus (a test checks them against minigpt.tokenizer).
BYTE_VOCAB = 256
CL100K_FULL_VOCAB = 100_277  # 100,256 ordinary tokens, the special tokens up to id 100,276


def fixed_vocab_size(config: Config) -> int | None:
    """The vocabulary size config implies on any corpus, or None when the corpus decides."""
    data = config.data
    if data.tokenizer == "byte":
        return BYTE_VOCAB
    if data.tokenizer == "cl100k_base" and not data.compact_vocab:
        return CL100K_FULL_VOCAB
    return None

"""The lesson's training loop, one optimizer step at a time.

`Trainer` owns the model, its optimizers (optimizers.py) and every random generator of a
run. `train_step()` does what the lesson's loop body does (get_batch, forward,
zero_grad, backward, step) plus the schedule, clipping and accumulation, and
`estimate_loss()` is the lesson's evaluation. Stepping one call at a time lets
the CLI, the engine service and the tests drive the same loop; the trainer
itself never touches files (see run.py for the run directory).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from minigpt.averaging import WeightAverage
from minigpt.batches import Corpus, get_batch
from minigpt.checkpoint import evaluated_weights
from minigpt.config import Config, TrainConfig, restart_keys
from minigpt.distributed import Cluster, no_sync
from minigpt.errors import DivergedError
from minigpt.events import LogEvent, StepEvent
from minigpt.model import Model
from minigpt.optimizers import build_optimizers, set_learning_rates

# Where a checkpoint keeps each optimizer's state: AdamW's (every run has one), then Muon's.
OPTIMIZER_KEYS = ("optimizer", "muon")


def pick_device(name: str) -> torch.device:
    """Resolve train.device: "auto" takes CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """Resolve train.dtype: "auto" is bf16 on CUDA that has it, else fp16 on CUDA, else fp32."""
    if name != "auto":
        return getattr(torch, name)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def default_threads() -> int:
    """Threads for train.threads = 0: the cores this process may use, shared with the
    other processes torchrun started on this machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def wants_compile(setting: str, device: torch.device) -> bool:
    """train.compile: "true", "false", or "auto", which is on for CUDA only: on a CPU
    the compiler's first step takes tens of seconds for a few percent
    (docs/benchmarks.md)."""
    return setting == "true" or (setting == "auto" and device.type == "cuda")


def lr_at(step: int, train: TrainConfig) -> float:
    """Linear warmup to learning_rate, then cosine decay to min_lr at max_iters."""
    if step < train.warmup_iters:
        return train.learning_rate * (step + 1) / (train.warmup_iters + 1)
    if step >= train.max_iters:
        return train.min_lr
    progress = (step - train.warmup_iters) / max(1, train.max_iters - train.warmup_iters)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return train.min_lr + cosine * (train.learning_rate - train.min_lr)


class Trainer:
    """A model, its optimizer and random generators, trained step by step on a corpus."""

    def __init__(
        self,
        config: Config,
        corpus: Corpus,
        cluster: Cluster | None = None,
    ) -> None:
        """Build a fresh, seeded model and optimizer for `config` on `corpus`; with a
        cluster, gradients are averaged over its ranks, each drawing its own batches."""
        self.config = config
        self.corpus = corpus
        self.logs: list[LogEvent] = []  # what it has to say (a compiler fallback), till taken
        self.cluster = cluster
        self.device = pick_device(config.train.device)
        self.dtype = pick_dtype(config.train.dtype, self.device)
        torch.set_num_threads(config.train.threads or default_threads())
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(config.train.seed)
        self.model = Model(config.model, corpus.tokenizer.vocab_size).to(self.device)
        self.optimizers = build_optimizers(self.model, config.train, self.device)
        self.average = WeightAverage(self.model) if config.train.ema_decay else None
        self.batch_generator = torch.Generator().manual_seed(self._batch_seed(0))
        self.scaler = torch.amp.GradScaler(enabled=self.dtype == torch.float16)
        use_compiler = wants_compile(config.train.compile, self.device)
        self.loss_of = self._compiled() if use_compiler else self.model.loss
        self.replicas = (
            cluster.replicate(self.model, self.loss_of, self.device) if cluster else None
        )
        # Held while the weights change, so a reader on another thread (the Inspector)
        # copies those of one finished step: the optimizer's update and the step count.
        self.weights_lock = threading.Lock()
        self.step = 0
        self.best_val_loss = math.inf
        self.position_loss: list[float] = []  # the last eval's val loss at each position
        self.elapsed = 0.0
        self.tokens_seen = 0  # training tokens read, across resumes and batch size changes

    def _optimizers_by_key(self) -> list[tuple[str, torch.optim.Optimizer]]:
        """Each optimizer with the checkpoint key its state is kept under."""
        return list(zip(OPTIMIZER_KEYS[: len(self.optimizers)], self.optimizers, strict=True))

    def _zero_grad(self) -> None:
        """Drop every gradient (freeing its memory), as the lesson's zero_grad does."""
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)

    def _batch_seed(self, step: int) -> int:
        """The batch generator's seed: train.seed for a single process and for rank 0
        (so a one-process resume repeats its losses), another stream for each other rank."""
        rank = self.cluster.rank if self.cluster else 0
        return self.config.train.seed + rank * 1_000_003 + (step if rank else 0)

    def _compiled(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The loss through a torch.compile'd model, or the eager loss when that is unavailable.

        The compiled path uses the plain forward: the chunked loss's Python loop would
        break the graph, and the compiler fuses the plain one itself.
        """
        try:
            compiled = torch.compile(self.model)
        except Exception as error:  # noqa: BLE001 - any compiler failure falls back the same way
            self._compile_failed(error)
            return self.model.loss
        return lambda x, y: compiled(x, y)[1]

    def _compile_failed(self, error: Exception) -> None:
        """Report a torch.compile failure; training goes on uncompiled."""
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        self.logs.append(
            LogEvent("warning", f"torch.compile failed, training uncompiled: {first_line}")
        )

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision where the dtype asks for it, a no-op in fp32."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _loss(self, x: torch.Tensor, y: torch.Tensor, training: bool = False) -> torch.Tensor:
        """Forward pass to the loss (through DDP when training on a cluster), falling back
        to eager mode if compilation breaks."""
        with self._autocast():
            try:
                loss = (self.replicas or self.loss_of)(x, y) if training else self.loss_of(x, y)
            except Exception as error:
                if self.loss_of == self.model.loss:
                    raise
                self._compile_failed(error)
                self.loss_of = self.model.loss
                loss = self.loss_of(x, y)
        return loss

    @property
    def eval_model(self) -> Model:
        """The model evals, samples and inspections use: the running average of the
        weights (train.ema_decay > 0), or the trained weights themselves."""
        average = self.average  # read once: apply_config may drop it on the loop's thread
        return average.model if average else self.model

    def _eval_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of eval_model (the averaged model runs uncompiled)."""
        if not self.average:
            return self._loss(x, y)
        with self._autocast():
            return self.average.model.loss(x, y)

    def weights_finite(self) -> bool:
        """Whether every weight is a finite number (a diverging step can leave inf or NaN)."""
        return all(bool(torch.isfinite(p).all()) for p in self.model.parameters())

    @property
    def lr(self) -> float:
        """Learning rate the next step will use."""
        return lr_at(self.step, self.config.train)

    @property
    def tokens_per_step(self) -> int:
        """Tokens the model reads in one optimizer step."""
        t = self.config.train
        ranks = self.cluster.world_size if self.cluster else 1
        return t.batch_size * t.grad_accum_steps * self.config.model.context_length * ranks

    def train_step(self) -> StepEvent:
        """One optimizer step: the lesson's loop body with schedule, accumulation and clipping.

        A loss that is not a finite number raises DivergedError before the
        optimizer step, so the weights keep their last finite values.
        """
        t = self.config.train
        started = time.perf_counter()
        lr = self.lr
        set_learning_rates(self.optimizers, t, lr / t.learning_rate)
        losses = []
        for micro_step in range(t.grad_accum_steps):
            x, y = self.batch("train")
            with no_sync(self.replicas, last=micro_step == t.grad_accum_steps - 1):
                loss = self._loss(x, y, training=True) / t.grad_accum_steps
                torch.autograd.backward(self.scaler.scale(loss))
            losses.append(loss.detach())
        norm = None
        if t.grad_clip > 0:  # clipping only queues work: its norm is read with the losses
            for optimizer in self.optimizers:
                self.scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        # One host sync per step reads the losses and the norm together (on a GPU, each
        # .item() would wait for the device; the norm is the one nanoGPT prints).
        *parts, grad_norm = torch.stack([*losses, losses[0] if norm is None else norm]).tolist()
        total = sum(parts, 0.0)
        if self.cluster:
            total = self.cluster.mean(total, self.device)  # every rank sees the same number
        if not math.isfinite(total):
            self._zero_grad()  # the weights stay as they were
            if norm is not None:
                self.scaler.update()  # close this step's unscale_, as a skipped step would
            raise DivergedError(
                f"the loss became {total} at step {self.step + 1} (learning rate {lr:.3g})",
                self.step + 1,
                total,
            )
        with self.weights_lock:
            for optimizer in self.optimizers:
                self.scaler.step(optimizer)
            self.step += 1
            if self.average:
                self.average.update(self.model, t.ema_decay, self.step)
        self.scaler.update()
        self._zero_grad()
        self.tokens_seen += self.tokens_per_step
        seconds = time.perf_counter() - started
        self.elapsed += seconds
        return StepEvent(
            step=self.step,
            loss=total,
            lr=lr,
            tokens_per_sec=self.tokens_per_step / seconds,
            ms_per_step=seconds * 1000,
            elapsed=self.elapsed,
            grad_norm=None if norm is None else grad_norm,
            clipped=None if norm is None else grad_norm > t.grad_clip,
        )

    def batch(
        self, split: str, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """The lesson's get_batch on this run's train or val split, on the run's device."""
        data = self.corpus.train if split == "train" else self.corpus.val
        return get_batch(
            data,
            self.config.train.batch_size,
            self.config.model.context_length,
            generator or self.batch_generator,
            self.device,
        )

    @torch.no_grad()
    def estimate_loss(self) -> dict[str, float]:
        """Mean loss of eval_model over eval_iters batches of each split, in eval mode,
        without gradients.

        The batches come from a generator seeded the same way at every call, so
        successive evaluations compare the model on the same text, and
        evaluating never moves the training batches or dropout.
        """
        was_training = self.model.training
        self.model.eval()
        out: dict[str, float] = {}
        for split in ("train", "val"):
            generator = torch.Generator().manual_seed(self.config.train.seed + 1)
            if split == "val":
                out[split] = self._val_loss(generator)
                continue
            losses = torch.zeros(self.config.train.eval_iters)
            for i in range(self.config.train.eval_iters):
                losses[i] = self._eval_loss(*self.batch(split, generator)).item()
            out[split] = losses.mean().item()
        self.model.train(was_training)
        return out

    def _val_loss(self, generator: torch.Generator) -> float:
        """The val split's mean loss over eval_iters batches; its mean at each position of
        the context is kept in position_loss, to show how much a longer context helps."""
        model = self.eval_model
        sums: torch.Tensor | None = None  # (T,) summed over the batches' rows
        rows = 0
        for _ in range(self.config.train.eval_iters):
            x, y = self.batch("val", generator)
            with self._autocast():
                losses = model.token_losses(x, y).double().sum(dim=0).cpu()  # (T,)
            sums = losses if sums is None else sums + losses
            rows += x.size(0)
        assert sums is not None, "eval_iters is at least 1"
        by_position = sums / rows
        self.position_loss = by_position.tolist()
        return by_position.mean().item()

    def apply_config(self, config: Config) -> None:
        """Switch to a config that differs only in keys that apply at the next step."""
        needs_restart = restart_keys(self.config, config)
        assert not needs_restart, f"keys that need a restart: {needs_restart}"
        self.config = config  # learning rates and weight decay follow at the next step
        if not config.train.ema_decay:
            self.average = None
        elif not self.average:  # switched on: the average starts from the weights as they are
            with self.weights_lock:
                self.average = WeightAverage(self.model)
        torch.set_num_threads(config.train.threads or default_threads())

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this step left off."""
        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "batches": self.batch_generator.get_state(),
        }
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "model": self.model.state_dict(),
            **{key: o.state_dict() for key, o in self._optimizers_by_key()},
            **({"average": self.average.state_dict()} if self.average else {}),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "best_val_loss": self.best_val_loss,
            "elapsed": self.elapsed,
            "tokens_seen": self.tokens_seen,
            "rng": rng,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore weights, optimizer, counters and random states saved by state_dict()."""
        with self.weights_lock:
            self.model.load_state_dict(state["model"])
            self.step = state["step"]
            if self.average:  # from a checkpoint without one, the average starts here
                self.average.load_state_dict(evaluated_weights(state))
        for key, optimizer in self._optimizers_by_key():
            optimizer.load_state_dict(state[key])
        self.scaler.load_state_dict(state["scaler"])
        self.best_val_loss = state["best_val_loss"]
        self.elapsed = state.get("elapsed", 0.0)
        self.tokens_seen = state.get("tokens_seen", self.step * self.tokens_per_step)
        torch.set_rng_state(state["rng"]["torch"])
        self.batch_generator.set_state(state["rng"]["batches"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        if self.cluster and not self.cluster.leader:  # the saved random states are rank 0's
            self.batch_generator.manual_seed(self._batch_seed(self.step))

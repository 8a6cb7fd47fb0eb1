"""A training run: a Trainer bound to its run directory.

`Run` decides when to evaluate and when to checkpoint, and records every
event in metrics.jsonl. `advance()` does one step of that schedule, so the
headless CLI, the engine service and the tests share one loop:

    run = Run.start(config, "runs/t")
    while not run.done:
        for event in run.advance():
            print(event.to_dict())

Everything a run has to say goes out by return value: `advance()` returns its
events, the logs and notices since the last call first (a torch.compile fallback,
a full disk). What is said outside it, e.g. by a `save()` between steps, waits
in the run until `drain()` takes it.

Resuming loads model.ckpt with the tokenizer, config and random states it
was saved with, so with a fixed seed the resumed run repeats the losses the
uninterrupted run would have had.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from minigpt.alerts import Alerts
from minigpt.batches import Corpus, prepare_data
from minigpt.checkpoint import load_checkpoint, save_checkpoint, saved_config
from minigpt.config import Config, config_to_dict, restart_keys
from minigpt.distributed import Cluster
from minigpt.errors import CheckpointError, DivergedError, described
from minigpt.events import (
    CheckpointEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    LearnedEvent,
    LogEvent,
    StepEvent,
)
from minigpt.health import bits_per_byte, block_health, tokens_per_byte
from minigpt.learned.views import LearnedViews
from minigpt.rundir.history_index import HistoryIndex
from minigpt.rundir.layout import RunDir
from minigpt.rundir.learned import LearnedRecords
from minigpt.tokenizer import Tokenizer, tokenizer_from_state
from minigpt.train import Trainer

Progress = Callable[[str, float], None]
REPLAYED_LINES = 1000  # the end of metrics.jsonl replayed to alerts a checkpoint did not keep


def _ignore(*_: Any) -> None:
    """Default for the progress of data preparation: none shown."""


class Run:
    """One run directory and the trainer that writes to it."""

    def __init__(self, run_dir: RunDir, trainer: Trainer) -> None:
        """Bind a trainer to a prepared run directory; use start() or resume()."""
        self.run_dir = run_dir
        self.trainer = trainer
        self.history = HistoryIndex(run_dir)
        self.last_eval_step: int | None = None
        self.saved_step: int | None = None  # step of the latest model.ckpt
        self.logs: list[LogEvent] = []  # the run's own, until drained (a failed best.ckpt)
        self.alerts = self._fresh_alerts()
        self.tokens_per_byte: dict[str, float] = {}  # per split, counted at the first eval
        self.records = LearnedRecords(run_dir.path)
        self.views: LearnedViews | None = None  # made at the first eval that measures them

    @classmethod
    def start(
        cls,
        config: Config,
        path: str | os.PathLike[str],
        progress: Progress = _ignore,
        overwrite: bool = False,
        cluster: Cluster | None = None,
    ) -> Run:
        """Begin a fresh run in `path`; an existing run there is refused unless overwrite."""
        run_dir = RunDir(path)
        if run_dir.model_ckpt.exists() and not overwrite:
            raise CheckpointError(
                f"{run_dir.path} already holds a run (model.ckpt); "
                "resume it with --resume or choose another --run-dir"
            )
        trainer = Trainer(config, load_corpus(config, None, progress), cluster)
        # Only now, with the new run built, may the old one go.
        # (history.sqlite stays: it no longer matches metrics.jsonl, so its next sync empties
        # it. Deleting it could pull it from under a connection still open on it.)
        for old in (run_dir.model_ckpt, run_dir.best_ckpt, run_dir.samples):
            old.unlink(missing_ok=True)
        LearnedRecords(run_dir.path).clear()
        run_dir.create()
        run_dir.remove_temporaries()
        run_dir.write_config(config)
        run_dir.metrics.unlink(missing_ok=True)
        return cls(run_dir, trainer)

    @classmethod
    def resume(
        cls,
        config: Config | None,
        path: str | os.PathLike[str],
        progress: Progress = _ignore,
        cluster: Cluster | None = None,
    ) -> Run:
        """Continue the run in `path` from model.ckpt.

        `config` (None: the checkpoint's own) may change keys that apply at the
        next step, such as max_iters or learning_rate; a change that needs a
        fresh model or data is refused.
        """
        run_dir = RunDir(path)
        state = load_checkpoint(run_dir.model_ckpt)
        trainer = trainer_from_checkpoint(config, state, str(run_dir.model_ckpt), progress, cluster)
        config = trainer.config
        run_dir.create()
        run_dir.remove_temporaries()
        run_dir.write_config(config)
        run = cls(run_dir, trainer)
        run.history.sync(progress)
        run.history.truncate_after(trainer.step)
        run.records.truncate_after(trainer.step)
        run._restore_alerts(state)
        run.last_eval_step = run.saved_step = trainer.step
        return run

    def _restore_alerts(self, state: dict[str, Any] | None) -> None:
        """Alerts as the checkpoint `state` kept them, so a resumed or rolled-back run keeps
        what was raised and the recent windows. For a checkpoint without them (an older
        one's, or none: a fresh model), they see the end of metrics.jsonl again instead."""
        self.alerts = self._fresh_alerts()
        try:
            self.alerts.load_state_dict((state or {})["alerts"])
        except (KeyError, TypeError, ValueError):
            self.alerts = self._fresh_alerts()
            for event in self.run_dir.read_metrics(last=REPLAYED_LINES):
                self.alerts.feed(event)

    def _fresh_alerts(self) -> Alerts:
        """Alerts that have seen nothing yet."""
        return Alerts(self.trainer.corpus.tokenizer.vocab_size, lambda: self.config)

    @property
    def config(self) -> Config:
        """The configuration in force."""
        return self.trainer.config

    @property
    def done(self) -> bool:
        """True once max_iters steps are trained."""
        return self.trainer.step >= self.config.train.max_iters

    @property
    def first_eval_due(self) -> bool:
        """True until the untrained model is evaluated: the next advance() does only that."""
        return self.last_eval_step is None

    def advance(self) -> list[Event]:
        """One step of the schedule, its events after what was said since the last drain.

        The untrained model's eval is a step of its own, so whoever handles its event
        still holds the weights it measured (the engine samples them); every later step
        is one optimizer step with the evaluations and checkpoints that fall due.
        """
        if self.first_eval_due:
            events = self.eval_events()
            return self.drain() + events
        events = []
        step_event = self.trainer.train_step()
        self.run_dir.append(step_event)
        events += self._watched(step_event)
        step, train = self.trainer.step, self.config.train
        if step % train.eval_interval == 0 or step == train.max_iters:
            events += self.eval_events()
        if step % train.checkpoint_interval == 0 or step == train.max_iters:
            try:
                events.append(self.save())
            except CheckpointError as error:  # the old checkpoint is intact: train on
                events.append(ErrorEvent(str(error)))
        return self.drain() + events

    def drain(self) -> list[Event]:
        """Take what the run said since the last drain, outside the events it returned: its
        trainer's logs, its files' notices, its own logs."""
        said: list[Event] = [*self.trainer.logs, *self.run_dir.notices, *self.logs]
        self.trainer.logs.clear()
        self.run_dir.notices.clear()
        self.logs.clear()
        return said

    def _watched(self, event: StepEvent | EvalEvent) -> list[Event]:
        """The event, then the alerts it raises (recorded in metrics.jsonl after it)."""
        alerts = self.alerts.feed(event)
        for alert in alerts:
            self.run_dir.append(alert)
        return [event, *alerts]

    def eval_events(self) -> list[Event]:
        """An eval, the alerts it raises, and what the model has learned by now."""
        events = self._watched(self.evaluate())
        if self.config.train.learned_views:
            events.append(self.measure_learned())
        return events

    def measure_learned(self) -> LearnedEvent:
        """Measure the learned views on the weights just evaluated and keep the record in
        learned/; a record that cannot be written is said in the run's log."""
        t = self.trainer
        if self.views is None:
            kept = self.records.probe()
            probe = kept.get("ids") if kept else None
            context = self.config.model.context_length
            views = LearnedViews.for_corpus(t.corpus, self.config.train.seed, context, probe)
            if earlier := self.records.at_or_before(t.step):
                views.follow(earlier)
            if kept is None:
                self._keep(lambda: self.records.write_probe(views.probe()))
            self.views = views
        record = self.views.record(t.eval_model, t.step, t.position_loss)
        self._keep(lambda: self.records.write(record))
        return record

    def _keep(self, write: Callable[[], object]) -> None:
        """Write a learned-views file; a failure (a full disk) is logged, training goes on."""
        try:
            write()
        except OSError as error:
            self.logs.append(LogEvent("warning", f"learned views not kept: {described(error)}"))

    def evaluate(self) -> EvalEvent:
        """Run estimate_loss now, with the health figures; a new best val loss also
        writes best.ckpt."""
        t = self.trainer
        losses = t.estimate_loss()
        improved = losses["val"] < t.best_val_loss
        if improved:
            t.best_val_loss = losses["val"]
        if not self.tokens_per_byte:
            corpus = t.corpus
            self.tokens_per_byte = {
                split: tokens_per_byte(corpus.tokenizer, ids)
                for split, ids in (("train", corpus.train), ("val", corpus.val))
            }
        ratios, norms = block_health(t.model.blocks, t.optimizers)
        event = EvalEvent(
            step=t.step,
            train_loss=losses["train"],
            val_loss=losses["val"],
            best_val_loss=t.best_val_loss,
            train_bpb=bits_per_byte(losses["train"], self.tokens_per_byte["train"]),
            val_bpb=bits_per_byte(losses["val"], self.tokens_per_byte["val"]),
            tokens_seen=t.tokens_seen,
            epochs=t.tokens_seen / len(t.corpus.train),
            update_ratio=ratios,
            weight_norm=norms,
            elapsed=t.elapsed,
        )
        self.run_dir.append(event)
        self.last_eval_step = self.trainer.step
        if improved:
            try:
                self.save(best=True)
            except CheckpointError as error:  # the previous best.ckpt is intact
                self.logs.append(LogEvent("error", str(error)))
        return event

    def save(self, best: bool = False) -> CheckpointEvent:
        """Write model.ckpt (or best.ckpt) for the current step; never weights gone NaN."""
        path = self.run_dir.best_ckpt if best else self.run_dir.model_ckpt
        if not self.trainer.weights_finite():
            raise CheckpointError(
                f"not saving {path.name}: the weights at step {self.trainer.step} are not "
                "finite numbers; the previous checkpoint is intact"
            )
        payload = {
            **self.trainer.state_dict(),
            "config": config_to_dict(self.config),
            "tokenizer": self.trainer.corpus.tokenizer.state_dict(),
            "alerts": self.alerts.state_dict(),
        }
        save_checkpoint(path, payload)
        if not best:
            self.saved_step = self.trainer.step
        event = CheckpointEvent(path=str(path), step=self.trainer.step)
        self.run_dir.append(event)
        return event

    def rollback(self, error: DivergedError) -> list[Event]:
        """Go back to model.ckpt (a fresh model when none is saved yet) after the loss
        diverged, keeping the config in force so the user can lower the learning rate;
        events after that step leave metrics.jsonl. Returns the diverged alert (recorded
        after the rollback), unless one is already raised."""
        t = self.trainer
        state = None
        if self.saved_step is None:  # the same trainer (its cluster too), on fresh weights
            t.load_state_dict(Trainer(self.config, t.corpus).state_dict())
        else:
            state = load_checkpoint(self.run_dir.model_ckpt)
            t.load_state_dict(state)
        self.history.truncate_after(t.step)
        self.records.truncate_after(t.step)
        self.last_eval_step = t.step
        self._restore_alerts(state)
        alert = self.alerts.diverged(error.step, error.loss)
        if alert is None:
            return []
        self.run_dir.append(alert)
        return [alert]

    def close(self) -> None:
        """Release the run directory's open files."""
        self.history.close()
        self.run_dir.close()


def trainer_from_checkpoint(
    config: Config | None,
    state: dict[str, Any],
    ckpt: str,
    progress: Progress = _ignore,
    cluster: Cluster | None = None,
) -> Trainer:
    """A trainer in the state a checkpoint (read from the file `ckpt`) holds; `config` None
    means the checkpoint's own, and a config that needs a fresh model is refused."""
    saved = saved_config(state, ckpt)
    config = config or saved
    if changed := restart_keys(saved, config):
        raise CheckpointError(
            f"cannot resume with changed {', '.join(changed)}: the checkpoint was trained "
            "with other values; start a new --run-dir for them"
        )
    tokenizer = tokenizer_from_state(state["tokenizer"])
    trainer = Trainer(config, load_corpus(config, tokenizer, progress), cluster)
    try:
        trainer.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as error:
        raise CheckpointError(
            f"{ckpt} does not fit this model: {str(error).splitlines()[0]}"
        ) from None
    return trainer


def load_corpus(
    config: Config, tokenizer: Tokenizer | None = None, progress: Progress = _ignore
) -> Corpus:
    """Load and tokenize the run's corpus; resuming passes the checkpoint's tokenizer."""
    d = config.data
    return prepare_data(
        d.path,
        d.tokenizer,
        d.compact_vocab,
        d.train_split,
        config.model.context_length,
        progress=progress,
        fitted=tokenizer,
    )

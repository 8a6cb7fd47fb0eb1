"""The engine: one run, driven by commands, watched by any number of clients.

The engine owns the run (model, optimizer, loop) in its own process and
serves it on `engine.sock` in the run directory (see server.py and
protocol.py). Its loop, in the main thread, does one thing at a time:

    carry out queued commands -> stream a little of any sample -> one training step

so every command acts at a step boundary, but `inspect`: the Inspector answers
it on a thread of its own from the weights of the last finished step, without
waiting for the step under way (inspector.py). Samples come from a frozen copy of
the model taken when the request arrives, with their own random generator:
serving them never changes the training run's losses. States: idle (built,
not training), running, paused, finished (max_iters reached) and failed.

SIGTERM and SIGINT save a checkpoint and exit; an engine that is neither
training nor watched for `idle_timeout` seconds saves and exits by itself.
Every event it emits also goes to its Notifier (notifier.py), which tells
the user of the ends, alerts and stalls [notify] asks for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import signal
import time
from collections.abc import Callable
from typing import Any

from minigpt.alerts import rate_advice
from minigpt.config import (
    Config,
    apply_values,
    changes,
    config_to_dict,
    parse_config_values,
    restart_keys,
)
from minigpt.distributed import EXIT, STEP, Cluster
from minigpt.errors import DivergedError, MiniGPTError
from minigpt.events import (
    DIVERGED,
    FAILED,
    FINISHED,
    IDLE,
    PAUSED,
    RUNNING,
    Audience,
    CheckpointEvent,
    ConfigAppliedEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    HelloEvent,
    HelloHistory,
    LogEvent,
    ModelFacts,
    SampleDoneEvent,
    StateEvent,
    StepEvent,
)
from minigpt.rundir.history import History
from minigpt.service.inspector import Inspector
from minigpt.service.notifier import Notifier
from minigpt.service.protocol import (
    PROTOCOL_VERSION,
    Command,
    ProtocolError,
    at_max_iters,
    failure_event,
    parse_command,
    restart_refused,
)
from minigpt.service.run import Run
from minigpt.service.sample_queue import SampleQueue
from minigpt.service.server import ControlServer, Peer

# A tiny model trains hundreds of steps a second; no view needs them all live
# (metrics.jsonl has every one), and a flood would crowd out a client's keys.
STEP_EVENTS_PER_SEC = 20
RUN_DIR_CHECK_S = 1.0  # how often the engine checks that its run directory is still there
# How often history.sqlite catches up with metrics.jsonl: a hello then reads at most this
# long's lines, and so does the next engine after a kill -9.
HISTORY_SYNC_S = 1.0


class Engine:
    """Serve one Run over its control socket until shutdown, a signal, or idleness."""

    def __init__(
        self,
        run: Run,
        start: bool = False,
        exit_when_finished: bool = False,
        idle_timeout: float = 0.0,
        on_event: Callable[[Event], None] = lambda event: None,
        cluster: Cluster | None = None,
    ) -> None:
        """Prepare to serve `run`; start=True trains at once. With a cluster (this is
        rank 0 of a torchrun job) every training step is announced to the other ranks."""
        self.run = run
        self.cluster = cluster
        self.exit_when_finished = exit_when_finished
        self.idle_timeout = idle_timeout
        self.on_event = on_event
        self.state = FINISHED if run.done else RUNNING if start else IDLE
        # (what happened, who, the command or the error its line was; None for a connection)
        self.inbox: queue.Queue[tuple[str, Peer, Command | ProtocolError | None]] = queue.Queue()
        self.server = ControlServer(
            run.run_dir.socket,
            on_line=self._receive,
            on_connect=lambda peer: self.inbox.put(("connect", peer, None)),
            on_disconnect=lambda peer: self.inbox.put(("disconnect", peer, None)),
        )
        self.inspector = Inspector(
            trainer=lambda: self.run.trainer,
            sample=lambda: self.run.config.sample,
            reply=self._answer,
        )
        self.samples = SampleQueue(on_text=self._emit, on_done=self._sample_done)
        self.notifier = Notifier(
            run.run_dir.path,
            lambda: self.run.config,
            run.trainer.best_val_loss,
            self.server.broadcast,
        )
        self.sample_count = 0
        self.exit_code: int | None = None
        self.idle_since = time.monotonic()
        self.announce_next_step = self.state == RUNNING
        self.last_step_sent = 0.0
        self.unsent_step: dict[str, Any] | None = None  # a throttled step event, not yet sent
        self.step_seconds = 0.0  # how long the last training step (with its evals) took
        self.lock_identity = self._lock_identity()  # None: run without a lock (in-process use)
        self.run_dir_checked = time.monotonic()
        self.history_synced = time.monotonic()
        self.history_problem: str | None = None  # the last one reported

    # -- the loop ---------------------------------------------------------

    def serve(self) -> int:
        """Run until shutdown; return the exit code (128 + signal number after a signal)."""
        self.inspector.start()
        self.notifier.start()
        self.server.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        for note in self._history().notes:  # the history that could be read is what clients see
            self._emit(LogEvent("warning", note))
        self._publish([StateEvent(self.state, "started")])  # after what building the run said
        try:
            while self.exit_code is None:
                busy = self.state == RUNNING or bool(self.samples)
                self._handle_inbox(wait=0.0 if busy else 0.2)
                if self.exit_code is not None:
                    break
                if self.samples:
                    self.samples.stream(self.step_seconds if self.state == RUNNING else 0.0)
                if self.state == RUNNING:
                    self._train_step()
                elif self.cluster:
                    self.cluster.keep_alive()
                if self.exit_when_finished and self.state == FINISHED and not self.samples:
                    self.exit_code = 0  # the last eval's sample is written first
                self._check_idle()
                self._check_run_dir()
                self._sync_history()
                self._tell_notifier_news()
        finally:
            self._save_if_behind()
            self.run.history.sync()
            self.notifier.close()  # once the last notice (finished) had its try
            self._tell_notifier_news()
            if self.cluster:
                self.cluster.send(EXIT)
            self.server.close()
            self.inspector.close()
            self.run.close()
        return self.exit_code

    def _on_signal(self, signum: int, _frame: object) -> None:
        """SIGTERM / SIGINT: leave the loop at the next boundary, saving on the way out."""
        self.exit_code = 128 + signum

    def _train_step(self) -> None:
        """One step of the run, with its evals and checkpoints; a crash fails the run, not us."""
        if self.run.done:
            self._set_state(FINISHED, "max_iters reached")
            return
        started = time.perf_counter()
        if self.cluster and not self.run.first_eval_due:  # the other ranks only train
            self.cluster.send(STEP, config_to_dict(self.run.config))
        try:
            events = self.run.advance()
        except DivergedError as error:
            self._diverged(error)
            return
        except Exception as error:  # noqa: BLE001 - torch errors (OOM...) end this run only
            self._publish([ErrorEvent(f"training failed: {error}")])
            self._set_state(FAILED, str(error).splitlines()[0] if str(error) else repr(error))
            if self.exit_when_finished:  # `minigpt train` has nothing left to wait for
                self.exit_code = 1
            return
        self.step_seconds = time.perf_counter() - started
        self._publish(events)
        if self.run.done:
            self._set_state(FINISHED, "max_iters reached")

    def _diverged(self, error: DivergedError) -> None:
        """Back to the last checkpoint, paused (or exiting, for `minigpt train`), with a hint
        that names the learning rate to lower."""
        try:
            alerts = self.run.rollback(error)
        except MiniGPTError as failure:  # e.g. model.ckpt damaged since it was written
            message = f"{error}; and the last checkpoint cannot be loaded: {failure}"
            self._publish([ErrorEvent(message)])
            self._set_state(FAILED, str(failure))
            return
        step = self.run.trainer.step
        where = f"model.ckpt (step {step})" if step else "a fresh model (no checkpoint yet)"
        advice = rate_advice(self.run.config.train)
        self.unsent_step = None  # a step of the run undone
        message = f"{error}. Training went back to {where}; {advice}, then resume"
        self._publish([ErrorEvent(message), *alerts])
        if self.exit_when_finished:  # `minigpt train` exits; said so, and notified, first
            self._set_state(FAILED, DIVERGED)
            self.exit_code = 2
            return
        self._set_state(PAUSED, DIVERGED)
        self._emit(self.hello())  # clients redraw from the step training went back to

    def _lock_identity(self) -> tuple[int, int] | None:
        """(device, inode) of the run's engine.lock, None when there is none."""
        try:
            found = os.stat(self.run.run_dir.lock)
        except OSError:
            return None
        return found.st_dev, found.st_ino

    def _check_run_dir(self) -> None:
        """Stop, without saving, once the run directory is deleted or replaced under us:
        there is nowhere to save, and a new run there must not get our checkpoint."""
        now = time.monotonic()
        if self.lock_identity is None or now - self.run_dir_checked < RUN_DIR_CHECK_S:
            return
        self.run_dir_checked = now
        if self._lock_identity() != self.lock_identity:
            self.run.saved_step = self.run.trainer.step  # nothing to save into
            path = self.run.run_dir.path
            self._emit(ErrorEvent(f"{path} was deleted or replaced; this engine stops", fatal=True))
            self.exit_code = 1

    def _sync_history(self) -> None:
        """Bring history.sqlite up to date now and then; say once why it cannot be."""
        now = time.monotonic()
        if now - self.history_synced < HISTORY_SYNC_S:
            return
        self.history_synced = now
        self.run.history.sync()
        problem = self.run.history.problem
        if problem != self.history_problem:
            self.history_problem = problem
            if problem is not None:  # the run goes on: metrics.jsonl has every line
                self._emit(LogEvent("warning", problem))

    def _tell_notifier_news(self) -> None:
        """Emit what the notifier's sender said (a webhook failing), from this thread."""
        for said in self.notifier.said():
            self._emit(said)

    def _history(self) -> History:
        """The run's history up to now, thinned, for a hello."""
        self.run.history.sync()
        return History.of(self.run.history, self.run.run_dir)

    def _check_idle(self) -> None:
        """Exit after idle_timeout seconds with nothing to do and nobody watching."""
        if self.state == RUNNING or self.samples or self.server.client_count:
            self.idle_since = time.monotonic()
        elif self.idle_timeout and time.monotonic() - self.idle_since > self.idle_timeout:
            self._emit(LogEvent("info", f"idle for {self.idle_timeout:g}s; exiting"))
            self.exit_code = 0

    def _save_if_behind(self) -> None:
        """Checkpoint on the way out when steps were trained since the last one."""
        if self.run.trainer.step > 0 and self.run.saved_step != self.run.trainer.step:
            try:
                self._publish([self.run.save()])
            except MiniGPTError as error:
                self._publish([ErrorEvent(str(error), fatal=True)])

    # -- events -----------------------------------------------------------

    def _publish(self, events: list[Event]) -> None:
        """Emit what the run said since the last drain, then `events`, queueing the sample
        of each eval among them while the run still holds the weights it measured."""
        for event in self.run.drain() + events:
            self._emit(event)
            if isinstance(event, EvalEvent):
                self._sample_at_eval(event)

    def _emit(self, event: Event) -> None:
        """Tell every client (step events at a bounded rate) and the local observer."""
        message = event.to_dict()
        with contextlib.suppress(OSError):  # printing to engine.log on a full disk
            self.on_event(event)
        if not isinstance(event, StepEvent):
            self.server.broadcast(message)
        elif self._step_due(event):
            self.server.broadcast(message)
            self.unsent_step = None
        else:
            self.unsent_step = message  # sent before the next state change, if still latest
        self.notifier.see(event)

    def _step_due(self, event: StepEvent) -> bool:
        """Whether clients should see this step: the first after a start, eval and final
        steps, and otherwise at most STEP_EVENTS_PER_SEC a second."""
        now = time.monotonic()
        train = self.run.config.train
        step = event.step or 0  # the run's own events always carry their step
        due = (
            self.announce_next_step
            or step % train.eval_interval == 0
            or step >= train.max_iters
            or now - self.last_step_sent >= 1 / STEP_EVENTS_PER_SEC
        )
        if due:
            self.announce_next_step = False
            self.last_step_sent = now
        return due

    def _answer(self, peer: Peer, event: Event) -> None:
        """Answer peer's command where the event's class says (`Event.audience`): a reply to
        peer alone, anything else to every client."""
        if event.audience is Audience.ASKER:
            self.server.send(peer, event.to_dict())
        else:
            self._publish([event])

    def _set_state(self, state: str, reason: str = "") -> None:
        """Change state and announce it, after the latest step so clients stop on the true step."""
        if self.unsent_step is not None:
            self.server.broadcast(self.unsent_step)
            self.unsent_step = None
        self.state = state
        self.announce_next_step = state == RUNNING
        self._emit(StateEvent(state, reason))

    def hello(self) -> HelloEvent:
        """What a client needs on arrival: config, state, model facts and history."""
        t, history = self.run.trainer, self._history()
        # From the run, not metrics.jsonl: a kill between writing model.ckpt
        # and logging it leaves the checkpoint newer than its log line.
        saved = self.run.saved_step
        checkpoint = CheckpointEvent(str(self.run.run_dir.model_ckpt), saved)
        return HelloEvent(
            protocol=PROTOCOL_VERSION,
            pid=os.getpid(),
            run_dir=str(self.run.run_dir.path.resolve()),
            config=config_to_dict(self.run.config),
            state=self.state,
            step=t.step,
            model=ModelFacts(
                params=t.model.num_params(),
                vocab_size=t.corpus.tokenizer.vocab_size,
                tokenizer=t.corpus.tokenizer.kind,
                corpus=t.corpus.name,
                corpus_tokens=t.corpus.num_tokens,
                device=str(t.device),
                dtype=str(t.dtype).removeprefix("torch."),
                tokens_per_step=t.tokens_per_step,
            ),
            history=HelloHistory(
                metrics=str(self.run.run_dir.metrics.resolve()),
                steps=history.steps,
                evals=history.evals,
                config_changes=history.config_changes,
                last_checkpoint=None if saved is None else checkpoint,
                best_val_loss=t.best_val_loss,
                train_seconds=history.train_seconds,
                samples=history.samples,
                skipped=history.notes,
                alerts=history.alerts,
            ),
        )

    # -- commands ---------------------------------------------------------

    def _handle_inbox(self, wait: float) -> None:
        """Carry out everything clients sent, waiting up to `wait` seconds for the first."""
        try:
            item = self.inbox.get(timeout=wait) if wait else self.inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            kind, peer, command = item
            if kind == "connect":
                self.server.send(peer, self.hello().to_dict(), ready=True)
            elif kind == "command" and command is not None:
                self._carry_out(peer, command)
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return

    def _receive(self, peer: Peer, line: bytes) -> None:
        """A command line, parsed in the socket's thread: an inspection goes to the inspector,
        which answers at once; everything else, a line that is no command included, waits in
        the inbox for the next step boundary, to be answered in turn."""
        command: Command | ProtocolError
        try:
            if not line:
                raise ProtocolError("command line too long (over 1 MiB); it was dropped")
            command = parse_command(line)
        except ProtocolError as error:
            command = error
        if isinstance(command, Command) and command.cmd == "inspect":
            self.inspector.ask(peer, command)
        else:
            self.inbox.put(("command", peer, command))

    def _carry_out(self, peer: Peer, command: Command | ProtocolError) -> None:
        """Carry out one command, or refuse the line that was none; any problem goes back to
        its sender only."""
        if isinstance(command, ProtocolError):
            self._answer(peer, failure_event(None, command))
            return
        try:
            getattr(self, f"_cmd_{command.cmd}")(peer, command)
        except Exception as error:  # noqa: BLE001 - a bug must cost one command, not the run
            self._answer(peer, failure_event(command, error))

    def _require(self, command: Command, *states: str) -> None:
        """Refuse a command that makes no sense in the current state."""
        if self.state not in states:
            raise ProtocolError(f"{command.cmd}: not possible while {self.state}")

    def _cmd_start(self, peer: Peer, command: Command) -> None:
        """Begin (or continue) training."""
        self._require(command, IDLE, PAUSED, FINISHED, FAILED)
        if self.run.done:
            raise at_max_iters(self.run.config.train.max_iters)
        self._set_state(RUNNING, command.cmd)

    _cmd_resume = _cmd_start

    def _cmd_pause(self, peer: Peer, command: Command) -> None:
        """Stop stepping until resume; the model stays in memory."""
        self._require(command, RUNNING)
        self._set_state(PAUSED, "pause")

    def _cmd_stop(self, peer: Peer, command: Command) -> None:
        """Stop training and save a checkpoint; the engine stays up."""
        self._require(command, RUNNING, PAUSED)
        self._save_if_behind()
        self._set_state(IDLE, "stopped")

    def _cmd_save(self, peer: Peer, command: Command) -> None:
        """Write model.ckpt now."""
        self._publish([self.run.save()])

    def _cmd_eval(self, peer: Peer, command: Command) -> None:
        """Run estimate_loss now."""
        self._publish(self.run.eval_events())

    def _cmd_shutdown(self, peer: Peer, command: Command) -> None:
        """Exit, saving first unless asked not to."""
        if not command.args.get("save", True):
            self.run.saved_step = self.run.trainer.step
        self.exit_code = 0

    def _cmd_set(self, peer: Peer, command: Command) -> None:
        """Change hot keys now; keys that need a fresh model only with restart=true."""
        args = command.args
        if ("values" in args) == ("toml" in args):
            raise ProtocolError('set: give exactly one of "values" (dotted keys) or "toml"')
        values = args["values"] if "values" in args else parse_config_values(args["toml"])
        old = self.run.config
        new = apply_values(old, values)
        if needs_restart := restart_keys(old, new):
            if self.cluster:
                raise ProtocolError(
                    f"set: {', '.join(needs_restart)} need a fresh model, which a torchrun job "
                    "cannot build in place; stop it and launch a new one"
                )
            if not args.get("restart", False):
                self._answer(peer, restart_refused(needs_restart, command.id))
                return
            self._restart(new)
            return
        self.run.trainer.apply_config(new)
        try:
            self.run.run_dir.write_config(new)
        except OSError as error:  # the run goes on with the change; only the file is behind
            reason = error.strerror or str(error)
            self._emit(LogEvent("error", f"config.toml not updated ({reason}); the change applies"))
        event = ConfigAppliedEvent(step=self.run.trainer.step, changes=changes(old, new))
        self.run.run_dir.append(event)
        self._answer(peer, dataclasses.replace(event, id=command.id))  # the asker hears it's done
        if self.state == FINISHED and not self.run.done:
            self._set_state(IDLE, "max_iters raised")

    def _restart(self, config: Config) -> None:
        """Start the run over with a config that needs a fresh model; tell everyone."""
        self.samples.cancel_all()
        self.unsent_step = None  # the old run's: after the new hello it would draw on a new chart
        run_dir = self.run.run_dir
        new_run = Run.start(config, run_dir.path, overwrite=True)
        self._publish([])  # the old run's last words
        self.run.close()
        self.run = new_run
        self.state = IDLE
        self._publish([self.hello()])  # a second hello tells clients to redraw from scratch

    def _cmd_sample(self, peer: Peer, command: Command) -> None:
        """Queue a completion from a frozen copy of the current weights, owned by peer."""
        args = dict(command.args)
        seed = args.pop("seed", None)
        values = {f"sample.{k}": v for k, v in args.items()}
        if seed is not None:  # a sample's seed obeys the run's seed rule
            values["train.seed"] = seed
        config = apply_values(self.run.config, values)
        self.sample_count += 1
        self._queue_sample(command.id or f"sample-{self.sample_count}", peer.number, config, seed)

    def _sample_at_eval(self, event: EvalEvent) -> None:
        """The [sample] prompt at a fixed seed, so successive evals' answers compare.

        At most one waits at a time: a fast run's evals must not pile up samples. The eval
        at max_iters is the exception: its sample queues behind one still streaming, so a
        finished run ends with the answer of its final weights however slowly it samples.
        """
        config = self.run.config
        if config.sample.at_eval and (self.run.done or not self.samples.waiting_at_eval):
            try:
                self._queue_sample(f"eval-{event.step}", None, config, config.train.seed)
            except MiniGPTError as error:  # e.g. a prompt the char vocabulary cannot encode
                self._emit(LogEvent("warning", f"no sample at eval: {error}"))

    def _queue_sample(
        self, job_id: str, owner: int | None, config: Config, seed: int | None
    ) -> None:
        """Start a completion of the current weights with config's [sample] settings."""
        t = self.run.trainer
        self.samples.add(job_id, owner, t.eval_model, t.corpus.tokenizer, config, seed, t.step)

    def _cmd_cancel_sample(self, peer: Peer, command: Command) -> None:
        """Stop one of peer's streaming completions (the named one, else its newest)."""
        self.samples.cancel(command.args.get("sample_id"), owner=peer.number)

    def _sample_done(self, event: SampleDoneEvent) -> None:
        """Keep a finished (or cancelled) completion in samples.jsonl and announce it."""
        self.run.run_dir.record_sample(event)
        self._publish([event])

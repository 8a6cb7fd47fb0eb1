"""Answering `inspect` while the engine trains, without waiting for the step under way.

The engine's loop carries out commands only between training steps, so an
inspection queued there waits up to a whole step (with its eval) before it is
even looked at. The Inspector answers on a thread of its own instead: it copies
the weights under the trainer's `weights_lock`, which the trainer holds only
while the optimizer changes them, and runs `inspect_next` on that copy while
the loop goes on with its forward and backward passes.

Contract:
- An answer holds the weights of one finished step, and says which (`step`);
  it never sees an optimizer update half applied.
- Nothing the training run uses changes: the copy is the inspector's own, and
  no random number is drawn, so the run's losses are those of a run never
  inspected.
- Requests are answered one at a time, in the order they arrived, as soon as
  they arrive: an inspection does not wait for the commands queued before it.
  Settings a request leaves out come from [sample] as it is when it is answered.
- Each answer, or the error it came to, goes to its asker alone, with its id.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable

from minigpt.config import SampleConfig
from minigpt.events import Audience, Event
from minigpt.inspection import inspect_next
from minigpt.service.protocol import Command, failure_event
from minigpt.service.server import Peer
from minigpt.train import Trainer

SETTINGS = ("temperature", "top_k", "top_p")  # what a request may leave to [sample]


class Inspector:
    """A thread that answers inspect commands from a copy of the latest weights."""

    def __init__(
        self,
        trainer: Callable[[], Trainer],
        sample: Callable[[], SampleConfig],
        reply: Callable[[Peer, Event], None],
    ) -> None:
        """Inspect the model of `trainer()` with defaults from `sample()`; answers go to
        `reply`. The getters are called per request: a restart may swap the trainer."""
        self.trainer = trainer
        self.sample = sample
        self.reply = reply
        self.requests: queue.Queue[tuple[Peer, Command] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._serve, name="minigpt-inspect", daemon=True)

    def start(self) -> None:
        """Begin answering."""
        self.thread.start()

    def ask(self, peer: Peer, command: Command) -> None:
        """Queue one inspect command; its answer goes back to peer."""
        self.requests.put((peer, command))

    def close(self, timeout: float = 10.0) -> None:
        """Answer what is queued, then stop the thread (waiting at most `timeout` seconds)."""
        if self.thread.is_alive():
            self.requests.put(None)
            self.thread.join(timeout)

    def _serve(self) -> None:
        """Answer requests until close()."""
        while (request := self.requests.get()) is not None:
            peer, command = request
            try:
                event = self._inspect(command)
            except Exception as error:  # noqa: BLE001 - a bad request costs its answer only
                event = failure_event(command, error)
            # Why: news for everyone goes out through the engine's loop, not from this thread.
            assert event.audience is Audience.ASKER, f"{event.name} is no reply to its asker alone"
            self.reply(peer, event)
            self.requests.task_done()  # requests.join() waits for the answers to what is queued

    def _inspect(self, command: Command) -> Event:
        """The inspection a command asks for, at the weights of the last finished step."""
        args = dict(command.args)
        sample = self.sample()
        settings = {key: args.pop(key, getattr(sample, key)) for key in SETTINGS}
        prompt = args.pop("prompt", sample.prompt)
        trainer = self.trainer()
        with trainer.weights_lock:
            model = copy.deepcopy(trainer.eval_model)
            step = trainer.step
        tokenizer = trainer.corpus.tokenizer
        result = inspect_next(model, tokenizer, prompt, step=step, **settings, **args)
        result.id = command.id
        return result

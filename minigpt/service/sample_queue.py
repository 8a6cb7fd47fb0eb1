"""The completions an engine is streaming, served between training steps.

A `SampleQueue` holds the completions an engine is streaming, each from a
frozen copy of the weights, and advances one of them a time slice at a time
between training steps: completions clients asked for first, the engine's
own samples at evals after them. Each job remembers the client that asked
for it (its `Peer.number`); only that client may cancel it, and ids are
unique among the jobs still streaming. What the jobs produce goes out
through two callbacks, as `sample_token` and `sample_done` events, each
with its text as (text, probability) spans.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from minigpt.config import Config, config_to_dict
from minigpt.events import SampleDoneEvent, SampleTokenEvent
from minigpt.model import Model
from minigpt.sampling import Completion
from minigpt.service.protocol import ProtocolError
from minigpt.tokenizer import Tokenizer

SAMPLE_SLICE_S = 0.03  # sampling time between two training steps, at least
# While someone waits for a completion, sampling also gets this share of a slow step's
# time, so a 1 s step does not stretch a 200-token answer over minutes.
SAMPLE_SHARE = 0.5


@dataclass
class SampleJob:
    """A completion being streamed to the clients."""

    id: str
    owner: int | None  # the Peer.number of the client that asked; None: the engine's, at an eval
    prompt: str
    settings: dict[str, Any]
    step: int
    completion: Completion
    pieces: Iterator[tuple[str, float | None]]
    text: list[str] = field(default_factory=list)
    spans: list[tuple[str, float | None]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def at_eval(self) -> bool:
        """Whether the engine sampled this at an eval, rather than a client asking for it."""
        return self.owner is None

    @property
    def tokens_per_sec(self) -> float:
        """Generation speed so far."""
        return self.completion.tokens / self.seconds if self.seconds else 0.0


class SampleQueue:
    """The completions being streamed, served a slice of time at a time."""

    def __init__(
        self,
        on_text: Callable[[SampleTokenEvent], None],
        on_done: Callable[[SampleDoneEvent], None],
    ) -> None:
        """Report new text with on_text, a finished or cancelled job with on_done."""
        self.jobs: deque[SampleJob] = deque()
        self.on_text = on_text
        self.on_done = on_done

    def __bool__(self) -> bool:
        """Whether any completion is streaming."""
        return bool(self.jobs)

    @property
    def waiting_at_eval(self) -> bool:
        """Whether one of the engine's own samples at an eval is still streaming."""
        return any(job.at_eval for job in self.jobs)

    def add(
        self,
        job_id: str,
        owner: int | None,
        model: Model,
        tokenizer: Tokenizer,
        config: Config,
        seed: int | None,
        step: int,
    ) -> None:
        """Start a completion with config's [sample] settings from a frozen copy of model."""
        if any(job.id == job_id for job in self.jobs):
            # Why: events name samples by id only; two live ones would mix their streams.
            raise ProtocolError(f"sample: a sample {job_id} is already streaming; use a new id")
        completion = Completion(copy.deepcopy(model).eval(), tokenizer, config.sample, seed=seed)
        self.jobs.append(
            SampleJob(
                id=job_id,
                owner=owner,
                prompt=config.sample.prompt,
                settings=config_to_dict(config)["sample"] | {"seed": seed},
                step=step,
                completion=completion,
                pieces=completion.spans(),
            )
        )

    def stream(self, step_seconds: float) -> None:
        """Stream one job for a slice of time, as one sample_token event.

        Completions people asked for go first, with a slice that grows with the time
        of a training step (0 while not training); samples at evals wait and get the
        fixed slice.
        """
        job = next((job for job in self.jobs if not job.at_eval), self.jobs[0])
        budget = SAMPLE_SLICE_S
        if not job.at_eval:
            budget = max(budget, SAMPLE_SHARE * step_seconds)
        started = time.perf_counter()
        spans = []
        done = False
        while time.perf_counter() - started < budget:
            span = next(job.pieces, None)
            if span is None:
                done = True
                break
            if span[0]:
                spans.append(span)
        job.seconds += time.perf_counter() - started
        if text := "".join(piece for piece, _ in spans):
            # Four digits tell a guess from a sure thing and keep samples.jsonl small.
            spans = [(piece, None if p is None else float(f"{p:.4g}")) for piece, p in spans]
            job.text.append(text)
            job.spans.extend(spans)
            self.on_text(SampleTokenEvent(job.id, text, job.tokens_per_sec, job.step, spans))
        if done:
            self._finish(job, cancelled=False)

    def cancel(self, sample_id: str | None, owner: int | None) -> None:
        """Cancel owner's sample named sample_id, else owner's newest one; refuse others'."""
        if sample_id is None:
            job = next((job for job in reversed(self.jobs) if job.owner == owner), None)
        else:
            job = next((job for job in self.jobs if job.id == sample_id), None)
        if job is None:
            what = "of yours" if sample_id is None else sample_id
            raise ProtocolError(f"cancel_sample: no sample {what} is streaming")
        if job.owner != owner:
            whose = "the engine (its sample at an eval)" if job.at_eval else "another client"
            raise ProtocolError(f"cancel_sample: sample {job.id} belongs to {whose}")
        self._finish(job, cancelled=True)

    def cancel_all(self) -> None:
        """Cancel every streaming completion, whoever asked for it."""
        for job in list(self.jobs):
            self._finish(job, cancelled=True)

    def _finish(self, job: SampleJob, cancelled: bool) -> None:
        """Stop a job and report it finished (or cancelled)."""
        job.completion.close()
        self.jobs.remove(job)
        self.on_done(
            SampleDoneEvent(
                id=job.id,
                prompt=job.prompt,
                text="".join(job.text),
                tokens=job.completion.tokens,
                tokens_per_sec=job.tokens_per_sec,
                step=job.step,
                prompt_tokens=job.completion.prompt_tokens,
                prompt_cropped=job.completion.prompt_cropped,
                settings=job.settings,
                cancelled=cancelled,
                at_eval=job.at_eval,
                spans=job.spans,
            )
        )

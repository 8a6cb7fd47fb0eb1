"""The Generate pane: type a prompt, watch the model answer token by token.

Top to bottom: the finished completions (yours, and the engine's answer to the
[sample] prompt at each eval), the completion streaming now, the sampling
controls (defaults from [sample]), a status line, and the prompt, whose
up/down keys walk the prompts sent before (kept in the run's samples.jsonl,
so they survive a restart of the dashboard). ctrl+o colours each generated
piece by the probability the model gave it when drawing it, so a learner sees
where it was guessing; completions from engines without those spans stay plain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeGuard

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Input, RichLog, Static

from minigpt.config import Config
from minigpt.display import number
from minigpt.errors import ConfigError
from minigpt.events import ErrorEvent, Event, SampleDoneEvent, SampleTokenEvent
from tui.messages import Ask
from tui.sampling_controls import RANDOM, SampleControls
from tui.status_line import StatusLine

SETTINGS = ("temperature", "top_k", "top_p", "max_new_tokens", "seed")  # its controls, in order
PROMPT_STYLE = "bold"
NOTE_STYLE = "dim italic"
# (below this probability, the style of a generated piece); from there up, plain text.
CONFIDENCE_LEVELS = [(0.1, "red"), (0.3, "dark_orange"), (0.5, "yellow"), (0.7, "green")]
CONFIDENT = 0.7

Span = tuple[str, float | None]  # a piece of generated text, and how likely it was drawn


@dataclass
class Streaming:
    """A completion asked for here, as far as it has come."""

    prompt: str
    text: str = ""
    spans: list[Span] = field(default_factory=list)
    cancelling: bool = False  # its cancel is on its way to the engine


@dataclass
class Completed:
    """One finished completion as the pane shows it."""

    prompt: str
    text: str
    note: str
    step: int | None
    at_eval: bool
    tokens: int  # generated, after the prompt
    spans: list[Span] = field(default_factory=list)  # text by confidence; empty: unknown
    prompt_tokens: int | None = None  # the prompt's tokens, before any crop; None: unknown


def from_first_token(completion: Completed, context: int) -> tuple[str, int | None]:
    """The text to inspect a completion by, and the position of its prompt's last token, so
    the odds shown first are those its first generated token was drawn from.

    The prompt tokenizes as it did when it was sampled, so with its token count known the
    position counts from the start and is exact, as long as the engine keeps the whole
    text: the completion goes along only as far as half the room the context leaves (its
    spans, about one a token, say where to cut), since a completion may tokenize into
    more tokens than were drawn. A prompt that filled the context goes alone, inspected at
    its end. Without the count (older events), positions count back from the end."""
    text, prompt_tokens = completion.prompt + completion.text, completion.prompt_tokens
    if not completion.tokens:
        return text, None
    if not prompt_tokens:
        return text, -min(completion.tokens + 1, context)
    if prompt_tokens >= context:
        return completion.prompt, None
    room = (context - prompt_tokens) // 2
    if completion.tokens > room:
        fits = _spans_fit(completion.spans, completion.text)
        pieces = [piece for piece, _ in completion.spans[:room]] if fits else []
        text = completion.prompt + "".join(pieces)
    return text, prompt_tokens - 1


def describe(event: SampleDoneEvent) -> str:
    """The note under a finished completion: whose weights, how fast, with what settings."""
    settings = event.settings
    temperature, top_k, top_p = (settings.get(key) for key in ("temperature", "top_k", "top_p"))
    seed = settings.get("seed")
    parts = [
        f"step {number(event.step, ',')} weights",
        "sampled at eval" if event.at_eval else "",
        f"{number(event.tokens, ',')} tokens",
        f"{number(event.tokens_per_sec, ',.0f')} tokens/s",
        f"temp {number(temperature, 'g')}" if _is_number(temperature) else "",
        f"top-k {top_k}" if _is_number(top_k) and top_k else "",
        f"top-p {number(top_p, 'g')}" if _is_number(top_p) and top_p < 1 else "",
        f"seed {seed}" if _is_number(seed) else "",
        "cancelled" if event.cancelled else "",
    ]
    if event.prompt_cropped:
        parts.append(f"prompt cropped by {event.prompt_cropped:,} tokens to fit the context")
    return " · ".join(part for part in parts if part)


def confidence_style(prob: object) -> str:
    """The style of a piece drawn with this probability ("" when sure, or unknown)."""
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not math.isfinite(prob):
        return ""
    return next((style for below, style in CONFIDENCE_LEVELS if prob < below), "")


def completion_text(prompt: str, text: str, spans: list[Span], coloured: bool) -> Text:
    """The prompt in bold, then the completion: coloured by its spans when asked and
    they make up the text exactly, else plain."""
    shown = Text().append(prompt, style=PROMPT_STYLE)  # bold as a span: the text stays plain
    if coloured and _spans_fit(spans, text):
        for piece, prob in spans:
            shown.append(piece, style=confidence_style(prob))
    else:
        shown.append(text)
    return shown


def confidence_legend() -> Text:
    """One line naming the confidence colours."""
    legend = Text("confidence ")
    low = "0"
    for below, style in CONFIDENCE_LEVELS:
        high = f"{below:.0%}"
        legend.append(f"{low}-{high}", style=style).append(" ")
        low = high.rstrip("%")
    return legend.append(f"≥{CONFIDENT:.0%}")


def _span_list(spans: object) -> list[Span]:
    """An event's spans as a list (whatever a hostile caller passed: empty if not a list)."""
    return list(spans) if isinstance(spans, list) else []


def _spans_fit(spans: object, text: str) -> bool:
    """Whether spans are (piece, probability) pairs whose pieces make up text."""
    if not isinstance(spans, list) or not spans:
        return False
    try:
        return "".join(piece for piece, _ in spans) == text
    except (TypeError, ValueError):  # not pairs, or pieces that are not text
        return False


def _is_number(value: object) -> TypeGuard[int | float]:
    """Whether a setting from the wire is a number (not a bool, not text)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class PromptInput(Input):
    """The prompt line; up and down walk the prompts sent before."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "Earlier prompt", show=False),
        Binding("down", "history(1)", "Later prompt", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        """An empty history; the line being typed is kept while walking it."""
        super().__init__(**kwargs)
        self.history: list[str] = []
        self.position = 0  # == len(history): the line being typed
        self.draft = ""

    def remember(self, prompt: str) -> None:
        """Add a sent prompt (not twice in a row) and go back to a fresh line."""
        if not self.history or self.history[-1] != prompt:
            self.history.append(prompt)
        self.position = len(self.history)
        self.draft = ""

    def action_history(self, offset: int) -> None:
        """Show the previous (-1) or next (+1) prompt; past the newest, the draft."""
        if not self.history:
            return
        if self.position == len(self.history):
            self.draft = self.value
        self.position = max(0, min(len(self.history), self.position + offset))
        in_history = self.position < len(self.history)
        self.value = self.history[self.position] if in_history else self.draft
        self.cursor_position = len(self.value)


class GeneratePane(Vertical):
    """Completions, the streaming one, sampling controls, status and prompt."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "escape", "Cancel sample / leave", show=False),
        Binding("ctrl+t", "toggle_eval_only", "At-eval samples"),
        Binding("ctrl+y", "copy_last", "Copy last"),
        Binding("ctrl+o", "toggle_confidence", "Confidence"),
        Binding("pageup", "scroll_completions(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_completions(1)", "Scroll down", show=False),
    ]

    running: reactive[Config | None] = reactive(None)  # the app's running config

    def __init__(self, **kwargs: Any) -> None:
        """Make the parts up front, so updates work at any moment."""
        super().__init__(**kwargs)
        self.completions = RichLog(id="completions", wrap=True, markup=False)
        self.streaming = Static(id="streaming", markup=False)
        self.controls = SampleControls(SETTINGS, "control", id="sample-controls")
        self.status = StatusLine(id="generate-status")
        self.prompt = PromptInput(placeholder="prompt: enter samples, escape leaves", id="prompt")
        self.finished: list[Completed] = []
        self.eval_only = False
        self.confidence = False  # colour generated text by how likely it was drawn
        self.at_eval_prompt = ""  # the [sample] prompt the engine answers at each eval
        self.streams: dict[str, Streaming] = {}  # request id -> the completion asked for here
        self.shown_stream: str | None = None  # the request the streaming view shows

    def compose(self) -> ComposeResult:
        """Output above, controls and prompt below."""
        yield self.completions
        yield self.streaming
        yield self.controls
        yield self.status
        yield self.prompt

    def on_mount(self) -> None:
        """Name the view in the border."""
        self._title_completions()

    # -- what the app tells the pane -----------------------------------------

    def watch_running(self, old: Config | None, new: Config | None) -> None:
        """Fill the controls from [sample] when it changes (seed empty: random)."""
        if new is not None and (old is None or old.sample != new.sample):
            sample = new.sample
            self.controls.show({key: getattr(sample, key) for key in SETTINGS if key != RANDOM})
            self.at_eval_prompt = sample.prompt
            self._title_completions()

    def load_history(self, samples: list[SampleDoneEvent]) -> None:
        """Show the run's earlier completions and offer its earlier prompts (a new engine:
        nothing it streamed before is coming any more)."""
        self.finished = []
        self.prompt.history = []
        self.streams.clear()
        self.streaming.update("")
        self.set_class(False, "-streaming")
        for event in samples:
            self._add(event)
            if not event.at_eval and event.prompt:
                self.prompt.remember(event.prompt)
        self._redraw()

    def inspection(self) -> tuple[str, int | None, dict[str, str]]:
        """What the Inspect pane looks at: the prompt being typed, else the last completion
        from its first generated token; and the controls (it takes those it has)."""
        text, position = self.prompt.value, None
        if not text and self.finished:
            context = self.running.model.context_length if self.running else 1
            text, position = from_first_token(self.finished[-1], context)
        return text, position, self.controls.texts()

    def finish(self, event: SampleDoneEvent) -> None:
        """A completion finished (anyone's): add it to the list."""
        self.streams.pop(event.id, None)
        if not self.streams:
            self.streaming.update("")
            self.set_class(False, "-streaming")
        entry = self._add(event)
        if not self.eval_only or entry.at_eval:
            self._write(entry)

    @property
    def talking(self) -> bool:
        """Whether the prompt has the keys or a completion asked for here streams."""
        return self.app.focused is self.prompt or bool(self.streams)

    # -- the engine's replies (tui.messages.Asker) ------------------------------

    def sent(self, ask: Ask, request: str | None) -> None:
        """A completion asked for: stream it into view as it comes."""
        if request is None:
            self.status.say("No engine to sample from.", error=True)
        elif ask.cmd == "sample":
            self.streams[request] = Streaming(str(ask.args["prompt"]))

    def answer(self, event: Event) -> None:
        """A piece of a completion asked for here, or why it was refused (its end is news
        for every dashboard: the app hands it to `finish`)."""
        if isinstance(event, SampleTokenEvent):
            self._stream(event)
        elif isinstance(event, ErrorEvent) and self.streams.pop(event.id or "", None) is not None:
            self.status.say(event.message, error=True)  # e.g. characters it never saw
        # An error about a cancel: the completion finished on the cancel's way.

    def _stream(self, event: SampleTokenEvent) -> None:
        """Show a piece of a completion asked for here."""
        stream = self.streams.get(event.id)
        if stream is None:
            return
        stream.text += event.text
        stream.spans.extend(_span_list(event.spans))
        self.shown_stream = event.id
        self._show_stream()
        self.streaming.border_title = (
            f"step {number(event.step, ',')} weights · "
            f"{number(event.tokens_per_sec, ',.0f')} tokens/s · escape cancels"
        )
        self.set_class(True, "-streaming")

    # -- keys -------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the prompt samples; in a control, it goes back to the prompt."""
        event.stop()
        if event.input is not self.prompt:
            self.prompt.focus()
            return
        prompt = event.value
        if not prompt.strip():
            self.status.say(
                "Type a prompt first: the model continues the text you give it.", error=True
            )
            return
        try:
            settings = self.controls.settings()
        except ConfigError as error:
            self.status.say(str(error), error=True)
            return
        self.prompt.remember(prompt)
        self.prompt.value = ""
        self.status.say("")
        self.post_message(Ask(self, "sample", prompt=prompt, **settings))

    def action_escape(self) -> None:
        """escape: cancel the completion streaming here, else give the keys back."""
        live = [request for request, stream in self.streams.items() if not stream.cancelling]
        if live:
            self.streams[live[-1]].cancelling = True
            self.post_message(Ask(self, "cancel_sample", sample_id=live[-1]))
        else:  # a second escape need not wait for the engine to confirm the first
            self.screen.set_focus(None)

    def action_toggle_eval_only(self) -> None:
        """ctrl+t: only the answers to the [sample] prompt at each eval, or everything."""
        self.eval_only = not self.eval_only
        self._redraw()

    def action_toggle_confidence(self) -> None:
        """ctrl+o: colour generated text by the probability it was drawn with, or not."""
        self.confidence = not self.confidence
        self._redraw()
        self._show_stream()

    def action_scroll_completions(self, direction: int) -> None:
        """pageup / pagedown: browse the completions without leaving the prompt."""
        if direction < 0:
            self.completions.scroll_page_up(animate=False)
        else:
            self.completions.scroll_page_down(animate=False)

    def action_copy_last(self) -> None:
        """ctrl+y: the last completion to the clipboard (OSC 52, which works over SSH)."""
        if not self.finished:
            self.status.say("Nothing to copy yet.")
            return
        last = self.finished[-1]
        self.app.copy_to_clipboard(last.prompt + last.text)
        self.status.say(
            f"Copied the last completion ({len(last.prompt + last.text):,} characters)."
        )

    # -- helpers ----------------------------------------------------------------

    def _add(self, event: SampleDoneEvent) -> Completed:
        """Keep a finished completion."""
        entry = Completed(
            prompt=event.prompt,
            text=event.text,
            note=describe(event),
            step=event.step,
            at_eval=event.at_eval,
            tokens=event.tokens if event.tokens and event.tokens > 0 else 0,
            spans=_span_list(event.spans),
            prompt_tokens=event.prompt_tokens,
        )
        self.finished.append(entry)
        return entry

    def _write(self, entry: Completed) -> None:
        """Show one completion: prompt (bold) and completion, then the note (last, so the
        newest note stays in view however long the text)."""
        shown = completion_text(entry.prompt, entry.text, entry.spans, self.confidence)
        self.completions.write(shown)
        self.completions.write(Text(entry.note, style=NOTE_STYLE))

    def _show_stream(self) -> None:
        """Show the completion streaming now, coloured when colouring is on."""
        stream = self.streams.get(self.shown_stream or "")
        if stream is not None:
            shown = completion_text(stream.prompt, stream.text, stream.spans, self.confidence)
            self.streaming.update(shown)

    def _redraw(self) -> None:
        """Show the completions of the current view."""
        self.completions.clear()
        for entry in self.finished:
            if not self.eval_only or entry.at_eval:
                self._write(entry)
        self._title_completions()

    def _title_completions(self) -> None:
        """Say which completions are shown, and how to switch."""
        if self.eval_only:
            prompt = self.at_eval_prompt
            title = f"at each eval: {prompt!r} · ctrl+t shows all"
        else:
            title = "completions · ctrl+t: only those at each eval"
        if self.confidence:  # the legend first, so a narrow border still shows it
            self.completions.border_title = confidence_legend() + Text(f" · {title}")
        else:
            self.completions.border_title = title

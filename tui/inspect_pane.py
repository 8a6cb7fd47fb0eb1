"""The Inspect pane: why the model says what it says, one next token at a time.

The lesson's generate takes the logits of the last position, divides them by
the temperature, applies softmax and draws. This pane shows the likeliest next
tokens as bars at each of those steps (the raw softmax, after the temperature,
after top-k, after top-p: what is drawn from), with the entropy in bits, for
the text the app hands it: the prompt being typed, or the last completion, where
left/right move along its tokens and the token that came next is marked. Its
controls change the bars at once (the engine answers from the current weights,
nothing is retrained); with "follow training" on, the bars refresh at each eval.
With the attention heatmap on (a), the bars give way to one head's attention
weights for the text, the current position's row marked, and each question asks
the engine for them. With the logit lens on (n), they give way to each block's own
likeliest next tokens, read off its residual stream as the output layer reads the
last block's: where in the model the answer forms.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from minigpt.display import number, probability_bar, token_label
from minigpt.errors import ConfigError
from minigpt.events import ErrorEvent, Event, InspectionEvent
from tui.attention import AttentionMap
from tui.messages import Ask
from tui.sampling_controls import SampleControls
from tui.status_line import StatusLine

STAGES = [("prob", "softmax"), ("prob_temperature", "temp"), ("prob_top_k", "top-k")]
STAGES.append(("prob_top_p", "top-p: drawn"))
BAR_WIDTH = 7
CELL_WIDTH = BAR_WIDTH + 7  # the bar, then " 100.0%"
TOKEN_WIDTH = 8
SETTINGS = ("temperature", "top_k", "top_p")  # what its controls change


def bar(fraction: float | None) -> Text:
    """A probability as a bar of eighth blocks and a percentage; "cut" when filtered out."""
    if fraction is None or fraction <= 0:
        return Text(f"{'cut':>{CELL_WIDTH}}", style="dim")
    return Text(probability_bar(fraction, BAR_WIDTH))


def lens_rows(event: InspectionEvent) -> Text:
    """The logit lens as a row per block: its likeliest tokens with their odds, the last
    block's being the model's own (the raw softmax)."""
    rows = [Text("each block's own guess (logit lens): the last is the model's", style="bold")]
    for index, guesses in enumerate(event.lens):
        row = Text(f"block {index:<2} ")
        for guess in guesses:
            mark = "bold" if guess.id is not None and guess.id == event.next_id else ""
            row.append(f"{token_label(guess.token, TOKEN_WIDTH)}", style=mark)
            row.append(f"{number(guess.prob, '.0%'):>4}  ")
        rows.append(row)
    if not event.lens:
        rows.append(Text("(this engine sent no lens)", style="dim"))
    return Text("\n").join(rows)


class InspectPane(Vertical, can_focus=True):
    """Candidates as bars at each of generate's steps, for one position of a text."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Earlier token"),
        Binding("right", "move(1)", "Later token"),
        Binding("f", "toggle_follow", "Follow training"),
        Binding("a", "toggle_attention", "Attention"),
        Binding("n", "toggle_lens", "Logit lens"),
        Binding("[", "block(-1)", "Earlier block", show=False),
        Binding("]", "block(1)", "Next block"),
        Binding("comma", "head(-1)", "Earlier head", key_display=",", show=False),
        Binding(".", "head(1)", "Next head"),
        Binding("m", "mean", "Mean of heads"),
    ]
    HEATMAP_ACTIONS: ClassVar[set[str]] = {"block", "head", "mean"}

    def __init__(self, **kwargs: Any) -> None:
        """Make the parts up front, so updates work at any moment."""
        super().__init__(**kwargs)
        self.tokens = Static(id="inspect-tokens")
        self.controls = SampleControls(SETTINGS, "inspect", id="inspect-controls")
        self.bars = Static(id="inspect-bars")
        self.heatmap = AttentionMap(id="attention")
        self.status = StatusLine(id="inspect-status")
        self.text = ""
        self.position: int | None = None  # None: the last token (or the prompt's end)
        self.length = 0  # tokens in the last answer
        self.follow = False
        self.shown: InspectionEvent | None = None

    def compose(self) -> ComposeResult:
        """The text's tokens, the controls, the bars."""
        yield self.tokens
        yield self.controls
        yield self.bars
        yield self.heatmap
        yield self.status

    def inspect(self, text: str, position: int | None, controls: dict[str, str]) -> None:
        """Look at this text from `position`, the controls holding these texts."""
        self.text, self.position = text, position
        self.controls.show_texts(controls)
        self.request()

    def request(self) -> None:
        """Ask for the odds with the controls as they are (a wrong one is named instead)."""
        if not self.text:
            self.status.say("Type a prompt in the Generate pane (g), or sample one, first.")
            return
        try:
            settings = self.controls.settings()
        except ConfigError as error:
            self.status.say(str(error), error=True)
            return
        if self.has_class("-attention"):
            settings["attention"] = True
        if self.position is not None:
            settings["position"] = self.position
        self.status.say("")
        self.post_message(Ask(self, "inspect", prompt=self.text, **settings))

    def sent(self, ask: Ask, request: str | None) -> None:
        """Asked; or not, for want of an engine."""
        if request is None:
            self.status.say("No engine to ask.", error=True)

    def answer(self, event: Event) -> None:
        """The odds asked for, or why the engine could not give them."""
        if isinstance(event, InspectionEvent):
            self.show(event)
        elif isinstance(event, ErrorEvent):
            self.status.say(event.message, error=True)

    def show(self, event: InspectionEvent) -> None:
        """Draw an answer: the tokens with the position marked, the entropy, the bars."""
        self.shown = event
        self.length = len(event.prompt_tokens)
        self.position = event.position
        tokens = Text()
        for index, token in enumerate(event.prompt_tokens[-40:], max(0, self.length - 40)):
            style = "reverse" if index == event.position else ""
            tokens.append(token, style=style).append(" ")
        self.tokens.update(tokens)
        entropy, temperature = number(event.entropy_bits, ".2f"), number(event.temperature, "g")
        self.border_title = (
            f"after token {number(event.position, 'd')} · step {number(event.step, ',')} · "
            f"entropy {entropy} bits · temp {temperature}{' · following' if self.follow else ''}"
        )
        header = Text(f"{'token':<{TOKEN_WIDTH}} ", style="bold")
        for _, title in STAGES:
            header.append(f"{title[:CELL_WIDTH]:<{CELL_WIDTH}} ", style="bold")
        rows = [header]
        for candidate in event.candidates:
            row = Text(f"{token_label(candidate.token, TOKEN_WIDTH)} ")
            for field, _ in STAGES:
                row.append_text(bar(getattr(candidate, field))).append(" ")
            if candidate.id is not None and candidate.id == event.next_id:
                row.append("◀ next", style="bold")
            rows.append(row)
        self.bars.update(lens_rows(event) if self.has_class("-lens") else Text("\n").join(rows))
        if self.has_class("-attention"):
            self.heatmap.show(event)

    def on_input_changed(self, event: Input.Changed) -> None:
        """A control changed: the bars follow at once."""
        event.stop()
        self.request()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a control gives the keys back to the pane."""
        event.stop()
        self.focus()

    def action_move(self, offset: int) -> None:
        """left / right: the odds after an earlier or later token of the text."""
        if self.length:
            self.position = max(0, min(self.length - 1, (self.position or 0) + offset))
            self.request()

    def action_toggle_follow(self) -> None:
        """f: refresh at each eval, to watch the distribution sharpen as the loss falls."""
        self.follow = not self.follow
        self.status.say("Following training: the bars refresh at each eval." if self.follow else "")
        if self.shown is not None:
            self.show(self.shown)

    def eval_happened(self) -> None:
        """An eval finished: with follow on, ask again from the new weights."""
        if self.follow:
            self.request()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The heatmap's keys apply while it shows."""
        return action not in self.HEATMAP_ACTIONS or self.has_class("-attention")

    def action_toggle_attention(self) -> None:
        """a: the attention heatmap in place of the bars, or back; asks again for the weights."""
        self.toggle_class("-attention")
        self.refresh_bindings()
        if self.has_class("-attention") and self.shown is not None:
            self.heatmap.show(self.shown)
        if self.text:
            self.request()

    def action_toggle_lens(self) -> None:
        """n: each block's own guesses (the logit lens) in place of the bars, or back."""
        self.toggle_class("-lens")
        if self.shown is not None:
            self.show(self.shown)

    def action_block(self, offset: int) -> None:
        """[ / ]: the heatmap of an earlier or later block."""
        self.heatmap.move_block(offset)

    def action_head(self, offset: int) -> None:
        """, / .: the heatmap of an earlier or later head."""
        self.heatmap.move_head(offset)

    def action_mean(self) -> None:
        """m: the heatmap of the mean over the block's heads, or back to one head."""
        self.heatmap.toggle_mean()

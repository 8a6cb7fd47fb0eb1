"""The minigpt-tui app: watch a run train, steer it with keys, talk to it.

The app never trains and never imports torch: an engine process does the work
(see minigpt.engine). A thread worker pumps the engine's events into the
link's queue and posts EventsWaiting; the handler drains the queue and owns
all UI state. Widgets get data set on them and redraw on their own timers.
"""

from __future__ import annotations

import traceback
from functools import singledispatchmethod
from pathlib import Path
from typing import ClassVar

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Footer, Header, Input, RichLog, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from minigpt.config import Config, apply_values, config_from_dict
from minigpt.display import number, ratio
from minigpt.errors import ConfigError, MiniGPTError
from minigpt.events import (
    AlertEvent,
    CheckpointEvent,
    ConfigAppliedEvent,
    ConfigRejectedEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    HelloEvent,
    InspectionEvent,
    LogEvent,
    ModelFacts,
    SampleDoneEvent,
    SampleTokenEvent,
    StateEvent,
    StepEvent,
    UnknownEvent,
)
from minigpt.rundir import RunDir, next_run_dir
from tui.charts import HealthChart, LearningRateChart, LossChart
from tui.compare import CompareScreen, other_runs, val_curves
from tui.config_pane import ConfigPane
from tui.generate import GeneratePane, from_first_token
from tui.inspect_pane import InspectPane
from tui.link import EngineLink
from tui.messages import EngineLost, EngineReady, EngineStatus, EventsWaiting
from tui.screens import HelpScreen, QuitScreen, RestartScreen, SaveConfigScreen
from tui.stats import RunStats, StatsPanel
from tui.terminal import CHECK_SECONDS, terminal_fd, terminal_gone

CONNECTING, LOST = "connecting", "engine lost"
# Keys of the two panes, for the help screen: (key, what it does).
PANE_KEYS = [
    ("up/down", "earlier / later prompts (in the prompt)"),
    ("pgup/pgdn", "scroll the completions (in the Generate pane)"),
    ("escape", "cancel the completion streaming; else leave the prompt"),
    *((b.key, f"{b.description} (in the Generate pane)") for b in GeneratePane.BINDINGS if b.show),  # type: ignore[union-attr]
    *((b.key, f"{b.description} (in the Config editor)") for b in ConfigPane.BINDINGS if b.show),  # type: ignore[union-attr]
    *(
        (b.key_display or b.key, f"{b.description} (in the Inspect pane)")  # type: ignore[union-attr]
        for b in InspectPane.BINDINGS
    ),
    ("escape", "leave the Config editor"),
]
ENGINE_COMMANDS = {"toggle_training", "save", "evaluate"}
# The engine's states; each shows as a CSS class on the screen (others show as they are).
STATES = {"idle", "running", "paused", "finished", "failed", CONNECTING, LOST}
STATS_SECONDS = 0.25  # numbers refresh at 4 Hz however fast steps arrive
BUG_PANEL_SECONDS = 20  # how long a dashboard error stays in the panel
DASHBOARD_LOG = "dashboard.log"  # in the run directory: tracebacks of the dashboard's own errors


class MiniGPTApp(App[None]):
    """The dashboard for one run."""

    CSS_PATH = "app.tcss"
    TITLE = "minigpt-tui"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    # Below 40 rows the charts give way to the Generate pane while you talk to the model.
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (40, "-tall")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_training", "Start/Pause"),
        Binding("s", "save", "Save"),
        Binding("e", "evaluate", "Eval"),
        Binding("g", "focus_prompt", "Prompt"),
        Binding("i", "inspect", "Inspect"),
        Binding("c", "show_tab('config')", "Config"),
        Binding("l", "show_tab('log')", "Log"),
        Binding("y", "toggle_log_scale", "Log y"),
        Binding("h", "toggle_health", "Health chart"),
        Binding("z", "zoom", "Zoom tabs"),
        Binding("o", "compare", "Compare runs"),
        Binding("r", "restart_engine", "Restart engine"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit_menu", "Quit"),
    ]

    state: reactive[str] = reactive(CONNECTING)

    def __init__(self, link: EngineLink) -> None:
        """A dashboard for the run that `link` reaches."""
        super().__init__()
        self.link = link
        self.stats = RunStats()
        self.model_facts: ModelFacts | None = None
        self.log_lines: list[str] = []
        self.requests: dict[str, str] = {}  # id of each command sent from here -> its cmd
        self.unknown_events: set[str] = set()  # names already logged once
        self.handler_errors = 0

    def compose(self) -> ComposeResult:
        """Charts and numbers on top, tabs below."""
        yield Header()
        yield Static(id="error-panel", markup=False)  # shown while the engine is lost
        with Horizontal(id="top"):
            yield LossChart(id="loss")
            yield HealthChart(id="health")
            with Vertical(id="side"):
                yield StatsPanel(id="stats")
                yield LearningRateChart(id="lr")
        with TabbedContent(id="tabs"):
            with TabPane("Generate", id="generate"):
                yield GeneratePane()
            with TabPane("Inspect", id="inspect"):
                yield InspectPane()
            with TabPane("Config", id="config"):
                yield ConfigPane()
            with TabPane("Log", id="log"):
                yield RichLog(id="log-view", wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Show the first frame at once; reach the engine in the background."""
        # Kept, not queried each time: events may still arrive while the app shuts down.
        self.loss_chart = self.query_one(LossChart)
        self.lr_chart = self.query_one(LearningRateChart)
        self.health_chart = self.query_one(HealthChart)
        self.stats_panel = self.query_one(StatsPanel)
        self.generate_pane = self.query_one(GeneratePane)
        self.config_pane = self.query_one(ConfigPane)
        self.inspect_pane = self.query_one(InspectPane)
        self.log_view = self.query_one("#log-view", RichLog)
        self.sub_title = f"{self.link.run_dir} · connecting"
        self.stats_panel.border_title = CONNECTING
        self.stats_panel.show(self.stats)
        self.stats_dirty = False
        self.set_interval(STATS_SECONDS, self.refresh_stats)
        if (terminal := terminal_fd()) is not None:
            self.set_interval(CHECK_SECONDS, lambda: self.check_terminal(terminal))
        self.pump()

    def check_terminal(self, fd: int) -> None:
        """Detach, leaving the engine training, once the terminal has gone (tui/terminal.py)."""
        if terminal_gone(fd):
            self.quit_chosen("detach")

    # -- the engine worker --------------------------------------------------

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def pump(self) -> None:
        """Connect (or start the engine), then move its events into the queue."""
        worker = get_current_worker()
        try:
            client = self.link.open(
                status=lambda text: self.post_message(EngineStatus(text)),
                cancelled=lambda: worker.is_cancelled,
            )
        except Exception as error:  # noqa: BLE001 - whatever stops the start is shown, not lost
            reason = str(error) if isinstance(error, MiniGPTError) else _described(error)
            self.post_message(EngineLost(reason))
            return
        self.post_message(EngineReady(client.hello))
        while not worker.is_cancelled:
            try:
                event = client.next_event(timeout=0.25)
            except (MiniGPTError, OSError, ValueError) as error:
                if not worker.is_cancelled:  # cancelled: the app closed this link itself
                    self.post_message(EngineLost(str(error)))
                return
            if event is not None:
                self.link.pending.append(event)
                # One notice in flight at a time: a fast run's hundreds of steps
                # a second must not flood the app's message queue ahead of keys.
                if not self.link.notified.is_set():
                    self.link.notified.set()
                    self.post_message(EventsWaiting())

    @on(EngineStatus)
    def show_status(self, message: EngineStatus) -> None:
        """Say what the connection is doing."""
        self.sub_title = message.text
        self.log_line(message.text)

    @on(EngineReady)
    def engine_ready(self, message: EngineReady) -> None:
        """Take the run's state and history from the hello."""
        self.apply_safely(message.hello)

    @on(EngineLost)
    def engine_lost(self, message: EngineLost) -> None:
        """Keep what we have, say what happened, offer a restart."""
        self.link.close()
        self.state = LOST
        self.log_line(f"engine lost: {message.reason}")
        started = self.model_facts is not None
        title = "The engine stopped" if started else "The engine could not start"
        then = (
            "Press r to start it again from the last checkpoint"
            if started
            else "Fix that, then press r to start it again"
        )
        self.show_panel(title, f"{message.reason}\n{then}, or q to quit.")

    @on(EventsWaiting)
    def drain_events(self) -> None:
        """Apply every queued engine event; the numbers refresh on their own timer."""
        self.link.notified.clear()
        while self.link.pending:
            self.apply_safely(self.link.pending.popleft())
        self.stats_dirty = True

    def apply_safely(self, event: Event) -> None:
        """Apply one event; a bug in doing so is shown and logged, and costs only that event."""
        try:
            self.apply_event(event)
        except Exception as error:  # noqa: BLE001 - the one place a dashboard bug is caught
            self.handler_errors += 1
            where = self.link.run_dir / DASHBOARD_LOG
            try:
                with open(where, "a", encoding="utf-8") as log:
                    log.write(f"while applying {event!r}:\n{traceback.format_exc()}\n")
                details = f"the traceback is in {where}"
            except OSError as failure:
                details = f"and {where} could not be written ({failure.strerror or failure})"
            what = f"{_described(error)} while showing a {event.name} event"
            self.log_line(f"dashboard error: {what}; {details}")
            self.show_panel(
                "The dashboard hit a bug",
                f"{what}.\nThe engine is not affected and trains on; {details}.",
                BUG_PANEL_SECONDS,
            )

    def show_panel(self, title: str, text: str, seconds: float | None = None) -> None:
        """Show the error panel above the charts (for `seconds`, or until the engine is back)."""
        panel = self.query_one("#error-panel", Static)
        panel.border_title = title
        panel.update(text)
        panel.add_class("-shown")
        if seconds is not None:
            self.set_timer(seconds, lambda: panel.remove_class("-shown"))

    def hide_panel(self) -> None:
        """The engine is back: the panel goes."""
        self.query_one("#error-panel", Static).remove_class("-shown")

    def refresh_stats(self) -> None:
        """Show the latest numbers, at most a few times a second."""
        if self.stats_dirty:
            self.stats_dirty = False
            self.stats_panel.show(self.stats)
            self.config_pane.show_speed(self.stats.ms_per_step)

    # -- applying engine events ----------------------------------------------

    @singledispatchmethod
    def apply_event(self, event: Event) -> None:
        """Fold one engine event into the UI state (one method per kind of event)."""
        self.log_line(f"{event.name}: {event}")

    @apply_event.register
    def apply_hello(self, hello: HelloEvent) -> None:
        """Reset every view from a hello (first contact, or a restarted run)."""
        self.hide_panel()
        facts, history = hello.model, hello.history
        self.model_facts = facts
        running = self.running_config(hello.config)
        max_iters = running.train.max_iters if running else None
        self.stats = RunStats(step=hello.step, max_iters=max_iters)
        self.stats.train_seconds = history.train_seconds
        self.loss_chart.reset(facts.vocab_size)
        self.lr_chart.reset()
        self.health_chart.reset(running.train.grad_clip if running else None)
        for step, loss, lr in history.steps:
            self.loss_chart.add_step(step, loss)
            self.lr_chart.add_step(step, lr)
        for evaluation in history.evals:
            self.chart_eval(evaluation)
        for change in history.config_changes:
            self.loss_chart.add_marker(change.step)
        for alert in history.alerts:
            self.mark_alert(alert.step)
        if history.last_checkpoint is not None:
            self.stats.checkpoint_step = history.last_checkpoint.step
        if running is not None:
            step_ms = _per_step_ms(self.stats.train_seconds, self.stats.step)
            self.config_pane.show_running(running, facts.vocab_size, step_ms)
            self.generate_pane.set_defaults(running.sample)
        self.generate_pane.load_history(history.samples)
        for note in history.skipped:  # odd lines in the run's files: shown once, not fatal
            self.log_line(f"history: {note}")
            self.notify(note, title="run history", severity="warning", timeout=10)
        self.title = f"minigpt-tui · {self.link.run_dir}"
        self.state = hello.state or "idle"
        self.stats_panel.show(self.stats)
        self.log_line(
            f"attached to engine pid {number(hello.pid, 'd')} "
            f"({hello.state or '?'}, step {number(hello.step, ',')})"
        )

    def running_config(self, config: dict[str, object]) -> Config | None:
        """The engine's config as this dashboard reads it; None (said in the pane) if it cannot."""
        try:
            return config_from_dict(config)
        except ConfigError as error:  # an engine from another version of minigpt
            self.config_pane.show_error(f"the engine's config does not fit this dashboard: {error}")
            return None

    @apply_event.register
    def apply_step(self, event: StepEvent) -> None:
        """A training step: numbers and both charts."""
        stats = self.stats
        stats.step = event.step
        stats.lr = event.lr
        stats.tokens_per_sec = event.tokens_per_sec
        stats.ms_per_step = event.ms_per_step
        stats.train_seconds = event.elapsed
        stats.grad_norm = event.grad_norm
        if event.clipped is not None:
            stats.clipped.append(event.clipped)
        self.loss_chart.add_step(event.step, event.loss)
        self.lr_chart.add_step(event.step, event.lr)
        self.health_chart.add_step(event.step, event.grad_norm)

    @apply_event.register
    def apply_eval(self, event: EvalEvent) -> None:
        """An evaluation: charted and logged (and the Inspect bars refreshed when following)."""
        self.chart_eval(event)
        self.inspect_pane.eval_happened()
        self.log_line(
            f"step {number(event.step, ',')}: train loss {number(event.train_loss, '.4f')}, "
            f"val loss {number(event.val_loss, '.4f')}{_health(event)}"
        )

    def chart_eval(self, event: EvalEvent) -> None:
        """Chart an evaluation and keep its numbers."""
        self.loss_chart.add_eval(event.step, event.train_loss, event.val_loss)
        self.stats.val_loss = event.val_loss
        self.stats.best_val_loss = event.best_val_loss
        self.stats.val_bpb = event.val_bpb
        self.stats.epochs = event.epochs
        ratios = [r for r in event.update_ratio or [] if r is not None]
        self.stats.update_ratio = max(ratios) if ratios else None

    @apply_event.register
    def apply_state(self, event: StateEvent) -> None:
        """The engine's state changed."""
        self.state = event.state
        self.log_line(f"state: {event.state}" + (f" ({event.reason})" if event.reason else ""))

    @apply_event.register
    def apply_checkpoint(self, event: CheckpointEvent) -> None:
        """A checkpoint was written: model.ckpt's step is the one a restart resumes from."""
        if event.path.endswith("model.ckpt"):
            self.stats.checkpoint_step = event.step
            self.log_line(f"saved {event.path} (step {number(event.step, ',')})")

    @apply_event.register
    def apply_config_change(self, event: ConfigAppliedEvent) -> None:
        """Mark a change (from any dashboard) on the loss chart, log it, show it as running."""
        self.loss_chart.add_marker(event.step)
        values = {key: change[-1] for key, change in event.changes.items() if change}
        changes = ", ".join(
            f"{key} {' -> '.join(map(str, change))}" for key, change in event.changes.items()
        )
        step = number(event.step, ",")
        self.log_line(f"step {step}: applied {changes or 'no change'}")
        pane = self.config_pane
        if pane.running is not None:
            try:
                pane.show_running(apply_values(pane.running, values))
            except ConfigError as error:
                self.log_line(f"the applied change does not fit this dashboard: {error}")
                return
            self.health_chart.set_clip(pane.running.train.grad_clip)
            if any(key.startswith("sample.") for key in values):
                self.generate_pane.set_defaults(pane.running.sample)
        pane.status.say(f"Applied at step {step}: {changes or 'no change'}.")

    @apply_event.register
    def apply_config_rejected(self, event: ConfigRejectedEvent) -> None:
        """A change needs a restart: say why, in the pane when it was ours."""
        text = f"{event.reason}: {', '.join(map(str, event.needs_restart))}"
        self.log_line(f"config not applied: {text}")
        if self.requests.pop(event.id or "", None) == "set":
            self.config_pane.show_error(text)

    @apply_event.register
    def apply_error(self, event: ErrorEvent) -> None:
        """An error: about a command of ours, where it was made; else a notification."""
        cmd = self.requests.pop(event.id or "", None)
        if cmd == "set":
            self.log_line(f"config not applied: {event.message}")
            self.config_pane.show_error(event.message)
        elif cmd == "sample":
            self.log_line(f"sample not made: {event.message}")
            self.generate_pane.failed(event.id or "", event.message)
        elif cmd == "inspect":
            self.inspect_pane.status.say(event.message, error=True)
        elif cmd == "cancel_sample":  # it had finished on its way: nothing to say
            self.log_line(f"cancel: {event.message}")
        else:
            self.log_line(f"error: {event.message}")
            self.notify(event.message, title="engine", severity="error", timeout=10)

    @apply_event.register
    def apply_log(self, event: LogEvent) -> None:
        """A message from the engine; warnings and errors also pop up."""
        self.log_line(f"log: {event.message}")
        if event.level in ("error", "warning"):
            self.notify(event.message, title="engine", severity=event.level, timeout=10)

    @apply_event.register
    def apply_sample_token(self, event: SampleTokenEvent) -> None:
        """A piece of a completion: streamed when it was asked for here."""
        self.generate_pane.stream(event)
        self.update_talking()

    @apply_event.register
    def apply_sample_done(self, event: SampleDoneEvent) -> None:
        """A completion finished (anyone's): listed."""
        self.requests.pop(event.id, None)
        self.generate_pane.finish(event)
        self.update_talking()

    @apply_event.register
    def apply_alert(self, event: AlertEvent) -> None:
        """Training looks unhealthy: said in plain words in the Log and a notice, and marked
        on the loss chart."""
        self.mark_alert(event.step)
        self.log_line(f"alert at step {number(event.step, ',')}: {event.message}")
        self.notify(event.message, title=f"training: {event.kind}", severity="warning", timeout=15)

    def mark_alert(self, step: int | None) -> None:
        """A red line at an alert's step, on the loss and the gradient-norm charts."""
        self.loss_chart.add_alert(step)
        self.health_chart.add_alert(step)

    @apply_event.register
    def apply_inspection(self, event: InspectionEvent) -> None:
        """The odds asked for from the Inspect pane."""
        self.requests.pop(event.id or "", None)
        self.inspect_pane.show(event)

    @apply_event.register
    def apply_unknown(self, event: UnknownEvent) -> None:
        """An event this dashboard does not know: logged once per name, otherwise ignored."""
        if event.event not in self.unknown_events:
            self.unknown_events.add(event.event)
            shown = repr(event.event) if event.event else "a line that is no event"
            self.log_line(f"ignored {shown} from the engine (a newer minigpt?)")

    def log_line(self, text: str) -> None:
        """Add a line to the Log tab."""
        self.log_lines.append(text)
        self.log_view.write(text)

    # -- state ----------------------------------------------------------------

    def watch_state(self, old: str, new: str) -> None:
        """Show the state in the header, as a CSS class, and in which keys apply."""
        if old in STATES:
            self.stats_panel.remove_class(f"-{old.replace(' ', '-')}")
        if new in STATES:
            self.stats_panel.add_class(f"-{new.replace(' ', '-')}")
        self.stats_panel.border_title = new  # the header may be cut short on a narrow terminal
        self.sub_title = _header(new, self.model_facts)
        if (old in (CONNECTING, LOST)) != (new in (CONNECTING, LOST)) or LOST in (old, new):
            self.refresh_bindings()  # which keys apply (see check_action) changed

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Engine keys are greyed out without an engine; restart shows only when it is lost."""
        if action == "restart_engine":
            return self.state == LOST
        if action in ENGINE_COMMANDS and self.state in (CONNECTING, LOST):
            return None
        return True

    # -- actions --------------------------------------------------------------

    def action_toggle_training(self) -> None:
        """space: start, pause or resume."""
        command = {"running": "pause", "paused": "resume"}.get(self.state, "start")
        self.link.send(command)

    def action_save(self) -> None:
        """s: write a checkpoint now."""
        self.link.send("save")

    def action_evaluate(self) -> None:
        """e: estimate the losses now."""
        self.link.send("eval")

    def action_focus_prompt(self) -> None:
        """g: go to the prompt."""
        self.query_one(TabbedContent).active = "generate"
        self.query_one("#prompt", Input).focus()

    def action_inspect(self) -> None:
        """i: the odds of the next token for the prompt being typed, else after the last
        completion's prompt (its first generated token marked); left/right move along it."""
        pane = self.generate_pane
        settings = {key: pane.controls[key].value for key in ("temperature", "top_k", "top_p")}
        text, position = pane.prompt.value, None
        if not text and pane.finished:
            running = self.config_pane.running
            context = running.model.context_length if running else 1
            text, position = from_first_token(pane.finished[-1], context)
        self.query_one(TabbedContent).active = "inspect"
        self.inspect_pane.focus()
        self.inspect_pane.inspect(text, position, settings)

    @on(InspectPane.Requested)
    def ask_for_odds(self, message: InspectPane.Requested) -> None:
        """Send the Inspect pane's question to the engine."""
        where = {} if message.position is None else {"position": message.position}
        if self.request("inspect", prompt=message.prompt, **where, **message.settings) is None:
            self.inspect_pane.status.say("No engine to ask.", error=True)

    def action_show_tab(self, tab: str) -> None:
        """c / l: show the Config tab (and edit) or the Log tab."""
        self.query_one(TabbedContent).active = tab
        if tab == "config":
            self.config_pane.editor.focus()

    def action_toggle_log_scale(self) -> None:
        """y: switch the loss chart between linear and log y."""
        chart = self.loss_chart
        chart.log_scale = not chart.log_scale

    def action_toggle_health(self) -> None:
        """h: the gradient-norm chart in the loss chart's place, or back."""
        self.query_one("#top").toggle_class("-health")

    def action_zoom(self) -> None:
        """z: the tabs fill the screen (room for completions and the config), or back."""
        screen = self.screen
        screen.maximized = None if screen.maximized else self.query_one(TabbedContent)

    def action_compare(self) -> None:
        """o: pick other runs whose val curves to draw on the loss chart."""
        chosen = list(self.loss_chart.overlays)
        self.push_screen(CompareScreen(other_runs(self.link.run_dir), chosen), self.compare_chosen)

    def compare_chosen(self, names: list[str] | None) -> None:
        """Draw the picked runs' val curves, once read."""
        if names is not None:
            self.load_overlays(names)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def load_overlays(self, names: list[str]) -> None:
        """Read the picked runs' val curves from their indexes (a run without one yet is
        indexed first, its progress in the header), then draw them."""
        worker = get_current_worker()
        parent = self.link.run_dir.resolve().parent
        curves = val_curves(
            [parent / name for name in names],
            lambda text: self.call_from_thread(setattr, self, "sub_title", text),
            cancelled=lambda: worker.is_cancelled,
        )
        if not worker.is_cancelled:
            self.call_from_thread(self.show_overlays, curves)

    def show_overlays(self, curves: dict[str, list[tuple[int, float]]]) -> None:
        """Draw other runs' val curves on the loss chart (the header shows the state again)."""
        self.sub_title = _header(self.state, self.model_facts)
        self.loss_chart.set_overlays(curves)
        self.log_line(f"comparing with: {', '.join(curves) or 'no other run'}")

    def action_help(self) -> None:
        """?: the key reference."""
        keys = [(b.key_display or b.key, b.description) for b in self.BINDINGS]  # type: ignore[union-attr]
        keys += PANE_KEYS
        self.push_screen(HelpScreen(keys))

    def action_restart_engine(self) -> None:
        """r: start a new engine, resuming from the last checkpoint."""
        self.link.engine_args = self.link.restart_args()
        self.link.attach_only = False
        self.state = CONNECTING
        self.pump()

    def action_quit_menu(self) -> None:
        """q: ask what should happen to the engine."""
        alive = self.state not in (CONNECTING, LOST)
        self.push_screen(QuitScreen(alive), self.quit_chosen)

    def quit_chosen(self, choice: str | None) -> None:
        """Carry out the quit dialog's answer."""
        if choice == "stop":
            self.link.send("shutdown")
        if choice in ("stop", "detach"):
            self.workers.cancel_group(self, "engine")
            self.link.close()
            self.exit()

    @on(GeneratePane.Submitted)
    def sample(self, message: GeneratePane.Submitted) -> None:
        """Ask the engine for a completion."""
        request = self.request("sample", prompt=message.prompt, **message.settings)
        if request is not None:
            self.generate_pane.expect(request, message.prompt)
            self.update_talking()
        else:
            self.generate_pane.status.say("No engine to sample from.", error=True)

    @on(GeneratePane.CancelRequested)
    def cancel_sample(self, message: GeneratePane.CancelRequested) -> None:
        """Stop the completion streaming in the Generate pane."""
        self.request("cancel_sample", sample_id=message.request)

    def request(self, cmd: str, **args: object) -> str | None:
        """Send a command whose replies name it, and remember it as ours; None: no engine."""
        request = self.link.send(cmd, **args)
        if request is not None:
            self.requests[request] = cmd
        return request

    @on(events.DescendantFocus)
    @on(events.DescendantBlur)
    @on(TabbedContent.TabActivated)
    def update_talking(self) -> None:
        """While the prompt has the keys, a completion streams or the Inspect pane is open,
        the tabs get the room."""
        if not self.screen_stack:  # focus leaves as the app closes
            return
        pane = self.generate_pane
        inspecting = self.query_one(TabbedContent).active == "inspect"
        talking = self.focused is pane.prompt or bool(pane.streams) or inspecting
        self.screen.set_class(talking, "-talking")

    # -- config changes -----------------------------------------------------------

    @on(ConfigPane.ApplyRequested)
    def apply_config(self, message: ConfigPane.ApplyRequested) -> None:
        """Send hot changes at once; ask first about changes that need a fresh model."""
        if not message.restart_keys:
            self.send_config(message.changes)
            return
        pane = self.config_pane
        changes = [
            f"{key}: {message.changes[key][0]} -> {message.changes[key][1]}"
            for key in message.restart_keys
        ]
        plan = "\n".join(pane.plan_lines(message.config))
        screen = RestartScreen(changes, plan, self.stats.step, next_run_dir(self.link.run_dir))
        self.push_screen(screen, lambda choice: self.restart_chosen(choice, message))

    def restart_chosen(self, choice: str | None, request: ConfigPane.ApplyRequested) -> None:
        """Carry out the restart dialog's answer."""
        pane = self.config_pane
        if choice == "restart":
            self.send_config(request.changes, restart=True)
        elif choice == "new_run":
            self.start_new_run()
        elif choice == "revert":
            pane.revert_keys(request.restart_keys)
            pane.action_apply()
        else:
            pane.status.say("Nothing applied; the editor keeps your text.")

    def send_config(self, changes: dict[str, list[object]], restart: bool = False) -> None:
        """Send the editor's changes to the engine as one set command."""
        values = {key: new for key, (_, new) in changes.items()}
        if self.request("set", values=values, restart=restart) is None:
            self.config_pane.status.say("No engine to apply the config to.", error=True)
        elif restart:
            self.config_pane.status.say(
                "Restarting the run with the new config (building the model)..."
            )
        else:
            self.config_pane.status.say("Applying...")

    def start_new_run(self) -> None:
        """Save and stop this run's engine; train the editor's config in a new run dir."""
        old, new = self.link.run_dir, next_run_dir(self.link.run_dir)
        RunDir(new).create()
        config_file = new / "config.toml"
        config_file.write_text(self.config_pane.editor.text, encoding="utf-8")
        self.link.send("shutdown")
        self.workers.cancel_group(self, "engine")
        self.link.close()
        self.link.retarget(new, config_file)
        self.log_line(f"{old} saved and its engine stopped; new run in {new}")
        self.config_pane.status.say(
            f"New run in {new}; {old} is kept (minigpt-tui --run-dir {old})."
        )
        self.state = CONNECTING
        self.pump()

    @on(ConfigPane.SaveRequested)
    def ask_where_to_save(self) -> None:
        """Ask for a path, then write the editor's text there."""
        default = self.link.config_file or "config.toml"
        self.push_screen(
            SaveConfigScreen(default),
            lambda path: self.config_pane.save_to(Path(path).expanduser()) if path else None,
        )


def _described(error: BaseException) -> str:
    """An exception as its type and message, for a person."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _health(event: EvalEvent) -> str:
    """An eval's health figures for the Log (empty from an engine that sends none)."""
    parts = []
    if event.val_bpb is not None:
        parts.append(f"{event.val_bpb:.3f} bits/byte")
    if event.tokens_seen is not None:
        parts.append(
            f"{number(event.tokens_seen, ',')} tokens seen ({number(event.epochs, '.2f')} epochs)"
        )
    for name, values, spec in (
        ("update ratio", event.update_ratio, ".1e"),
        ("weight norm", event.weight_norm, ".3g"),
    ):
        if values:
            parts.append(f"{name} by block {' '.join(number(v, spec) for v in values)}")
    return "".join(f" · {part}" for part in parts)


def _header(state: str, facts: ModelFacts | None) -> str:
    """The header's second line: the state, and what the model is once known."""
    if facts is None:
        return state
    params = ratio(facts.params, 1e6)
    return (
        f"{state} · {facts.device or '?'} · {number(params, '.2f')}M params · "
        f"vocab {number(facts.vocab_size, ',')} {facts.tokenizer}"
    )


def _per_step_ms(seconds: float | None, steps: int | None) -> float:
    """Average milliseconds a step from a run's totals (0 when unknown)."""
    if not seconds or not steps or steps <= 0:
        return 0.0
    return ratio(1000 * seconds, steps) or 0.0


def make_app(link: EngineLink) -> MiniGPTApp:
    """The one app factory, for the command line and the tests alike."""
    return MiniGPTApp(link)

"""The minigpt-tui app: watch a run train, steer it with keys, talk to it.

An engine process trains (minigpt.service.engine), reached through a link (tui/link.py) whose
events a worker moves into an inbox (tui/pump.py). The app draws everyone's news (steps,
evals, states) and hands each reply to the pane that asked (tui/messages.py: Ask), as the
event's class declares (tui/replies.py); the running config goes down into the panes by
data binding. See docs/architecture.md.
"""

from __future__ import annotations

import os
from functools import singledispatchmethod
from pathlib import Path
from typing import ClassVar

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.widgets import Footer, Header, TabbedContent, TabPane
from textual.worker import get_current_worker

from minigpt.config import Config, apply_values, config_from_dict
from minigpt.display import number
from minigpt.errors import ConfigError, described
from minigpt.events import (
    AlertEvent,
    CheckpointEvent,
    ConfigAppliedEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    HelloEvent,
    LearnedEvent,
    LogEvent,
    ModelFacts,
    NoticeEvent,
    SampleDoneEvent,
    SampleTokenEvent,
    StateEvent,
    StepEvent,
    UnknownEvent,
)
from tui.compare import Compared, CompareScreen, other_runs
from tui.config_pane import ConfigPane
from tui.error_panel import ErrorPanel
from tui.export import export_model
from tui.generate_pane import GeneratePane
from tui.help_keys import help_keys
from tui.inspect_pane import InspectPane
from tui.learned_pane import LearnedPane
from tui.link import Link
from tui.log_view import LogView
from tui.messages import Ask, EngineLost, EngineReady, EngineStatus, EventsWaiting
from tui.pump import Inbox, pump_events
from tui.replies import Replies
from tui.screens import HelpScreen, QuitScreen
from tui.series import AXES
from tui.terminal import CHECK_SECONDS, terminal_fd, terminal_gone
from tui.terminal_notice import terminal_notice
from tui.top_row import CONNECTING, LOST, TopRow
from tui.wording import changes_text, eval_line, header

ENGINE_COMMANDS = {"toggle_training", "send"}
LOGGED_REPLY_CHARS = 300  # of a reply no pane waits for: an inspection's weights run to pages
SHOWN_BEFORE = {"alert", "diverged", "failed"}  # notices whose alert or error popped up already


class MiniGPTApp(App[None]):
    """The dashboard for one run."""

    CSS_PATH = "app.tcss"
    TITLE = "minigpt-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 - App's own type
    # Below 40 rows the charts give way to the Generate pane while you talk to the model.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]  # noqa: RUF012 - App's own type
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_training", "Start/Pause"),
        Binding("s", "send('save')", "Save"),
        Binding("e", "send('eval')", "Eval"),
        Binding("g", "focus_prompt", "Prompt"),
        Binding("i", "inspect", "Inspect"),
        Binding("w", "learned", "Learned"),
        Binding("c", "show_tab('config')", "Config"),
        Binding("l", "show_tab('log')", "Log"),
        Binding("y", "toggle_log_scale", "Log y"),
        Binding("t", "next_x_axis", "X: step/tokens/time"),
        Binding("h", "toggle_class('#top', '-health')", "Health chart"),
        Binding("z", "zoom", "Zoom tabs"),
        Binding("o", "compare", "Compare runs"),
        Binding("x", "export", "Export model"),
        Binding("r", "restart_engine", "Restart engine"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit_menu", "Quit"),
    ]

    state: reactive[str] = reactive(CONNECTING)
    # Bound into the top row and panes (data_bind in compose): they read these, never set them.
    running: reactive[Config | None] = reactive(None)
    vocab_size: reactive[int] = reactive(0)
    ms_per_step: reactive[float] = reactive(0.0)  # the measured time of a step
    step: reactive[int] = reactive(0)  # the step, as often as the top row's numbers refresh
    run_dir: reactive[Path] = reactive(Path())

    def __init__(self, link: Link) -> None:
        """A dashboard for the run that `link` reaches."""
        super().__init__()
        self.link = link
        self.inbox = Inbox()
        self.replies = Replies()  # the panes waiting for the engine's answers
        self.model_facts: ModelFacts | None = None
        self.handler_errors = 0
        self.set_reactive(MiniGPTApp.run_dir, link.run_dir)

    def compose(self) -> ComposeResult:
        """Charts and numbers on top, tabs below."""
        yield Header()
        yield ErrorPanel(id="error-panel")  # shown while the engine is lost
        yield TopRow(id="top").data_bind(MiniGPTApp.state, MiniGPTApp.running, MiniGPTApp.run_dir)
        with TabbedContent(id="tabs"):
            with TabPane("Generate", id="generate"):
                yield GeneratePane().data_bind(MiniGPTApp.running)
            with TabPane("Inspect", id="inspect"):
                yield InspectPane()
            with TabPane("Learned", id="learned"):
                yield LearnedPane().data_bind(MiniGPTApp.run_dir)
            with TabPane("Config", id="config"):
                yield ConfigPane(self.link.config_file).data_bind(
                    MiniGPTApp.running,
                    MiniGPTApp.vocab_size,
                    MiniGPTApp.ms_per_step,
                    MiniGPTApp.step,
                    MiniGPTApp.run_dir,
                )
            with TabPane("Log", id="log"):
                yield LogView(id="log-view")
        yield Footer()

    def on_mount(self) -> None:
        """Show the first frame at once; reach the engine in the background."""
        # Kept, not queried each time: events may still arrive while the app shuts down.
        self.error_panel = self.query_one(ErrorPanel)
        self.top = self.query_one(TopRow)
        self.loss_chart, self.lr_chart = self.top.loss_chart, self.top.lr_chart
        self.generate_pane = self.query_one(GeneratePane)
        self.config_pane = self.query_one(ConfigPane)
        self.inspect_pane = self.query_one(InspectPane)
        self.log_view = self.query_one(LogView)
        self.log_lines = self.log_view.lines_written
        self.sub_title = f"{self.link.run_dir} · connecting"
        if (terminal := terminal_fd()) is not None:  # gone: detach, the engine trains on
            self.set_interval(CHECK_SECONDS, lambda: self.detach_if_gone(terminal))
        self.pump()

    def detach_if_gone(self, fd: int) -> None:
        """Detach, leaving the engine training, once the terminal has gone (tui/terminal.py)."""
        if terminal_gone(fd):
            self.quit_chosen("detach")

    # -- the engine worker --------------------------------------------------

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def pump(self) -> None:
        """Connect (or start the engine), then move its events into the inbox."""
        worker = get_current_worker()
        pump_events(self.link, self.inbox, self.post_message, lambda: worker.is_cancelled)

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
        self.error_panel.show_lost(message.reason, started=self.model_facts is not None)

    @on(EventsWaiting)
    def drain_events(self) -> None:
        """Apply every waiting engine event; the numbers refresh on their own timer."""
        for event in self.inbox.take():
            self.apply_safely(event)
        self.update_talking()  # a completion may have ended

    def apply_safely(self, event: Event) -> None:
        """Apply one event; a bug in doing so is shown and logged, and costs only that event."""
        try:
            route = self.replies.route(event)
            if route.news:
                self.apply_event(event)
            if route.asker is not None:
                if isinstance(event, ErrorEvent):  # said in the pane; the Log keeps it too
                    self.log_line(f"{route.command}: {event.message}")
                route.asker.answer(event)
        except Exception as error:  # noqa: BLE001 - the one place a dashboard bug is caught
            self.handler_errors += 1
            what = f"{described(error)} while showing a {event.name} event"
            context = f"while applying {event!r}"
            self.log_line(self.error_panel.show_bug(what, context, self.link.run_dir))

    @on(Ask)
    def ask(self, message: Ask) -> None:
        """Send a pane's command; the replies that carry its id go back to the pane."""
        request = self.link.send(message.cmd, **message.args)
        if request is not None:
            self.replies.expect(request, message.asker, message.cmd)
        message.asker.sent(message, request)
        self.update_talking()

    @on(TopRow.Progress)
    def progress_shown(self, message: TopRow.Progress) -> None:
        """The numbers show a new step: it and a step's time go down into the Config pane."""
        self.step, self.ms_per_step = message.step, message.ms_per_step

    # -- applying engine events ----------------------------------------------

    @singledispatchmethod
    def apply_event(self, event: Event) -> None:
        """Fold one engine event into the UI state (one method per kind of event); a reply
        with no method, that no pane waits for (tui/replies.py), is logged."""
        said = f"{event.name} for {getattr(event, 'id', None)}, which no pane waits for: {event}"
        self.log_line(said[:LOGGED_REPLY_CHARS])

    @apply_event.register
    def apply_hello(self, hello: HelloEvent) -> None:
        """Reset every view from a hello (first contact, or a restarted run)."""
        self.error_panel.hide()
        self.replies.forget_all()  # a new engine answers nothing the last one was asked
        facts, history = hello.model, hello.history
        self.model_facts = facts
        try:
            running: Config | None = config_from_dict(hello.config)
        except ConfigError as error:  # an engine from another version of minigpt
            running = None
            self.config_pane.show_error(f"the engine's config does not fit this dashboard: {error}")
        self.vocab_size = facts.vocab_size or 0
        self.running = running
        self.top.load(hello.step, facts.vocab_size, history)  # after running: it binds that
        self.generate_pane.load_history(history.samples)
        for note in history.skipped:  # odd lines in the run's files: shown once, not fatal
            self.log_line(f"history: {note}")
            self.notify(note, title="run history", severity="warning", timeout=10)
        self.title = f"minigpt-tui · {self.link.run_dir}"
        self.run_dir = self.link.run_dir
        self.state = hello.state or "idle"
        self.log_line(
            f"attached to engine pid {number(hello.pid, 'd')} "
            f"({hello.state or '?'}, step {number(hello.step, ',')})"
        )

    @apply_event.register
    def apply_step(self, event: StepEvent) -> None:
        """A training step: numbers and both charts."""
        self.top.add_step(event)

    @apply_event.register
    def apply_eval(self, event: EvalEvent) -> None:
        """An evaluation: charted and logged (and the Inspect bars refreshed when following)."""
        self.top.add_eval(event)
        self.inspect_pane.eval_happened()
        self.log_line(eval_line(event))

    @apply_event.register
    def apply_state(self, event: StateEvent) -> None:
        """The engine's state changed."""
        self.state = event.state
        self.log_line(f"state: {event.state}" + (f" ({event.reason})" if event.reason else ""))

    @apply_event.register
    def apply_checkpoint(self, event: CheckpointEvent) -> None:
        """A checkpoint was written: model.ckpt's step is the one a restart resumes from."""
        if event.path.endswith("model.ckpt"):
            self.top.add_checkpoint(event.step)
            self.log_line(f"saved {event.path} (step {number(event.step, ',')})")

    @apply_event.register
    def apply_config_change(self, event: ConfigAppliedEvent) -> None:
        """Mark a change (from any dashboard) on the loss chart, log it, make it the running
        config."""
        self.loss_chart.add_marker(event.step)
        self.log_line(f"step {number(event.step, ',')}: applied {changes_text(event)}")
        if self.running is None:
            return
        values = {key: change[-1] for key, change in event.changes.items() if change}
        try:
            self.running = apply_values(self.running, values)
        except ConfigError as error:
            self.log_line(f"the applied change does not fit this dashboard: {error}")

    @apply_event.register
    def apply_error(self, event: ErrorEvent) -> None:
        """An error about no command of ours: logged and shown as a notice."""
        self.log_line(f"error: {event.message}")
        self.notify(event.message, title="engine", severity="error", timeout=10)

    @apply_event.register
    def apply_log(self, event: LogEvent) -> None:
        """A message from the engine; warnings and errors also pop up."""
        self.log_line(f"log: {event.message}")
        if event.level in ("error", "warning"):
            severity: SeverityLevel = "error" if event.level == "error" else "warning"
            self.notify(event.message, title="engine", severity=severity, timeout=10)

    @apply_event.register
    def apply_sample_done(self, event: SampleDoneEvent) -> None:
        """Any completion, asked for here or elsewhere or the engine's at an eval: listed."""
        self.generate_pane.finish(event)

    @apply_event.register
    def apply_sample_token(self, event: SampleTokenEvent) -> None:
        """A piece of a completion no pane here streams: it is listed once done."""

    @apply_event.register
    def apply_alert(self, event: AlertEvent) -> None:
        """Training looks unhealthy: said in plain words in the Log and a notice, and marked
        on the loss chart."""
        self.top.mark_alert(event.step)
        self.log_line(f"alert at step {number(event.step, ',')}: {event.message}")
        self.notify(event.message, title=f"training: {event.kind}", severity="warning", timeout=15)

    @apply_event.register
    def apply_notice(self, event: NoticeEvent) -> None:
        """What [notify] asks to be told of: the terminal's bell and a desktop notification
        (tui/terminal_notice.py), a line in the Log, and a toast unless one said it already."""
        self.log_line(f"notice: {event.title}: {event.message}")
        if self._driver is not None:  # as App.copy_to_clipboard writes its OSC 52, headless too
            tmux = bool(os.environ.get("TMUX"))
            self._driver.write(terminal_notice(event.title, event.message, tmux))
        if event.kind not in SHOWN_BEFORE:
            self.notify(event.message, title=event.title, timeout=15)

    @apply_event.register
    def apply_learned(self, event: LearnedEvent) -> None:
        """What the model learned by an eval: the Learned pane shows it."""
        self.query_one(LearnedPane).add(event)

    @apply_event.register
    def apply_unknown(self, event: UnknownEvent) -> None:
        """An event this dashboard does not know: logged once per name, otherwise ignored."""
        self.log_view.add_unknown(event)

    def log_line(self, text: str) -> None:
        """Add a line to the Log tab."""
        self.log_view.add(text)

    # -- state ----------------------------------------------------------------

    def watch_state(self, old: str, new: str) -> None:
        """Show the state in the header and in which keys apply (the top row shows it too)."""
        self.sub_title = header(new, self.model_facts)
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

    def action_send(self, command: str) -> None:
        """s: write a checkpoint now; e: estimate the losses now."""
        self.link.send(command)

    def action_focus_prompt(self) -> None:
        """g: go to the prompt."""
        self.query_one(TabbedContent).active = "generate"
        self.generate_pane.prompt.focus()

    def action_inspect(self) -> None:
        """i: the odds of the next token for the prompt being typed, else after the last
        completion's prompt (its first generated token marked); left/right move along it."""
        self.query_one(TabbedContent).active = "inspect"
        self.inspect_pane.focus()
        self.inspect_pane.inspect(*self.generate_pane.inspection())

    def action_learned(self) -> None:
        """w: what the model has learned, eval by eval; left/right step through the evals.
        Below 40 rows the tabs fill the screen, as z does, for the charts to be read."""
        self.query_one(TabbedContent).active = "learned"
        self.query_one(LearnedPane).focus()
        if self.screen.has_class("-short") and not self.screen.maximized:
            self.action_zoom()

    def action_show_tab(self, tab: str) -> None:
        """c / l: show the Config tab (and edit) or the Log tab."""
        self.query_one(TabbedContent).active = tab
        if tab == "config":
            self.config_pane.editor.focus()

    def action_toggle_log_scale(self) -> None:
        """y: switch the loss chart between linear and log y."""
        chart = self.loss_chart
        chart.log_scale = not chart.log_scale

    def action_next_x_axis(self) -> None:
        """t: the loss chart against steps, then tokens seen, then training time."""
        chart = self.loss_chart
        chart.x_axis = AXES[(AXES.index(chart.x_axis) + 1) % len(AXES)]

    def action_zoom(self) -> None:
        """z: the tabs fill the screen (room for completions and the config), or back."""
        screen = self.screen
        screen.maximized = None if screen.maximized else self.query_one(TabbedContent)

    def action_compare(self) -> None:
        """o: pick other runs whose val curves to draw on the loss chart."""
        chosen = list(self.loss_chart.overlays)
        self.push_screen(CompareScreen(other_runs(self.link.run_dir), chosen), self.compare_chosen)

    def compare_chosen(self, names: list[str] | None) -> None:
        """Draw the picked runs' val curves once read (progress in the header), then log it."""
        if names is not None:
            runs = [self.link.run_dir.resolve().parent / name for name in names]
            say = lambda text: self.call_from_thread(setattr, self, "sub_title", text)  # noqa: E731
            self.top.compare(runs, say, self.compared)

    def compared(self, runs: list[Compared]) -> None:
        """Other runs' curves are drawn: the header shows the state again; the Log says
        which, and why a run's settings are not named."""
        self.sub_title = header(self.state, self.model_facts)
        names = ", ".join(run.name for run in runs)
        self.log_line(f"comparing with: {names or 'no other run'}")
        for run in runs:
            if run.problem:
                self.log_line(f"{run.name}: its settings cannot be named: {run.problem}")

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def action_export(self) -> None:
        """x: the last checkpoint as a transformers model in the run directory; says where."""
        self.call_from_thread(self.notify, "Exporting the last checkpoint...", title="export")
        done, said = export_model(self.link.run_dir, self.top.stats.checkpoint_step)
        self.call_from_thread(self.log_line, f"export: {said}")
        severity: SeverityLevel = "information" if done else "error"
        self.call_from_thread(self.notify, said, title="export", severity=severity, timeout=20)

    def action_help(self) -> None:
        """?: the key reference."""
        self.push_screen(HelpScreen(help_keys(self.BINDINGS)))

    def action_restart_engine(self) -> None:
        """r: start a new engine, resuming from the last checkpoint."""
        self.link.restart()
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

    @on(ConfigPane.NewRunRequested)
    def start_new_run(self, message: ConfigPane.NewRunRequested) -> None:
        """Save and stop this run's engine; train the editor's config in a new run dir."""
        old = self.link.run_dir
        self.workers.cancel_group(self, "engine")  # before the link closes under the worker
        try:
            new = self.link.new_run(message.config_text)
        except OSError as error:
            where = error.filename or old
            message.pane.show_error(f"No new run: cannot write {where}: {error.strerror or error}")
            self.pump()  # back to this run's engine
            return
        self.log_line(f"{old} saved and its engine stopped; new run in {new}")
        message.pane.new_run_started(old, new)
        self.state = CONNECTING
        self.pump()

    @on(events.DescendantFocus)
    @on(events.DescendantBlur)
    @on(TabbedContent.TabActivated)
    def update_talking(self) -> None:
        """While the prompt has the keys, a completion streams or the Inspect pane is open,
        the tabs get the room."""
        if not self.screen_stack:  # focus leaves as the app closes
            return
        tabs = self.query(TabbedContent)
        if not tabs:  # events still drain while the closing app's widgets are removed
            return
        inspecting = tabs.first().active == "inspect"
        self.screen.set_class(self.generate_pane.talking or inspecting, "-talking")


def make_app(link: Link) -> MiniGPTApp:
    """The one app factory, for the command line and the tests alike."""
    return MiniGPTApp(link)

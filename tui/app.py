"""The minigpt-tui app: watch a run train, steer it with keys, talk to it.

The app never trains and never imports torch: an engine process does the work
(see minigpt.engine). A thread worker pumps the engine's events into the
link's queue and posts EventsWaiting; the handler drains the queue and owns
all UI state. Widgets get data set on them and redraw on their own timers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Footer, Header, Input, RichLog, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from minigpt.config import apply_values, config_from_dict
from minigpt.errors import ConfigError, MiniGPTError
from minigpt.rundir import RunDir, next_run_dir
from tui.charts import LearningRateChart, LossChart
from tui.compare import CompareScreen, other_runs, val_curve
from tui.config_pane import ConfigPane
from tui.generate import GeneratePane
from tui.link import EngineLink
from tui.messages import EngineLost, EngineReady, EngineStatus, EventsWaiting
from tui.screens import HelpScreen, QuitScreen, RestartScreen, SaveConfigScreen
from tui.stats import RunStats, StatsPanel

CONNECTING, LOST = "connecting", "engine lost"
# Keys of the two panes, for the help screen: (key, what it does).
PANE_KEYS = [
    ("up/down", "earlier / later prompts (in the prompt)"),
    ("pgup/pgdn", "scroll the completions (in the Generate pane)"),
    ("escape", "cancel the completion streaming; else leave the prompt"),
    *((b.key, f"{b.description} (in the Generate pane)") for b in GeneratePane.BINDINGS if b.show),  # type: ignore[union-attr]
    *((b.key, f"{b.description} (in the Config editor)") for b in ConfigPane.BINDINGS if b.show),  # type: ignore[union-attr]
    ("escape", "leave the Config editor"),
]
CONFIG_REQUEST = "config-"  # the id prefix of the Config pane's set commands
SAMPLE_REQUEST = "ui-"  # the id prefix of the Generate pane's sample commands
ENGINE_COMMANDS = {"toggle_training", "save", "evaluate"}
STATS_SECONDS = 0.25  # numbers refresh at 4 Hz however fast steps arrive


class MiniGPTApp(App[None]):
    """The dashboard for one run."""

    CSS_PATH = "app.tcss"
    TITLE = "minigpt-tui"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_training", "Start/Pause"),
        Binding("s", "save", "Save"),
        Binding("e", "evaluate", "Eval"),
        Binding("g", "focus_prompt", "Prompt"),
        Binding("c", "show_tab('config')", "Config"),
        Binding("l", "show_tab('log')", "Log"),
        Binding("y", "toggle_log_scale", "Log y"),
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
        self.model_facts: dict[str, Any] = {}
        self.log_lines: list[str] = []
        self.sample_requests = 0
        self.config_requests = 0

    def compose(self) -> ComposeResult:
        """Charts and numbers on top, tabs below."""
        yield Header()
        yield Static(id="error-panel", markup=False)  # shown while the engine is lost
        with Horizontal(id="top"):
            yield LossChart(id="loss")
            with Vertical(id="side"):
                yield StatsPanel(id="stats")
                yield LearningRateChart(id="lr")
        with TabbedContent(id="tabs"):
            with TabPane("Generate", id="generate"):
                yield GeneratePane()
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
        self.stats_panel = self.query_one(StatsPanel)
        self.generate_pane = self.query_one(GeneratePane)
        self.config_pane = self.query_one(ConfigPane)
        self.log_view = self.query_one("#log-view", RichLog)
        self.sub_title = f"{self.link.run_dir} · connecting"
        self.stats_panel.border_title = CONNECTING
        self.stats_panel.show(self.stats)
        self.stats_dirty = False
        self.set_interval(STATS_SECONDS, self.refresh_stats)
        self.pump()

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
        except MiniGPTError as error:
            self.post_message(EngineLost(str(error)))
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
        self.apply_hello(message.hello)

    @on(EngineLost)
    def engine_lost(self, message: EngineLost) -> None:
        """Keep what we have, say what happened, offer a restart."""
        self.link.close()
        self.state = LOST
        self.log_line(f"engine lost: {message.reason}")
        panel = self.query_one("#error-panel", Static)
        started = bool(self.model_facts)
        panel.border_title = "The engine stopped" if started else "The engine could not start"
        then = (
            "Press r to start it again from the last checkpoint"
            if started
            else "Fix that, then press r to start it again"
        )
        panel.update(f"{message.reason}\n{then}, or q to quit.")

    @on(EventsWaiting)
    def drain_events(self) -> None:
        """Apply every queued engine event; the numbers refresh on their own timer."""
        self.link.notified.clear()
        while self.link.pending:
            self.apply_event(self.link.pending.popleft())
        self.stats_dirty = True

    def refresh_stats(self) -> None:
        """Show the latest numbers, at most a few times a second."""
        if self.stats_dirty:
            self.stats_dirty = False
            self.stats_panel.show(self.stats)
            self.config_pane.show_speed(self.stats.ms_per_step)

    # -- applying engine events ----------------------------------------------

    def apply_hello(self, hello: dict[str, Any]) -> None:
        """Reset every view from a hello (first contact, or a restarted run)."""
        self.model_facts = hello["model"]
        config = hello["config"]
        history = hello["history"]
        self.stats = RunStats(step=hello["step"], max_iters=config["train"]["max_iters"])
        self.stats.train_seconds = history.get("train_seconds", 0.0)
        loss_chart, lr_chart = self.loss_chart, self.lr_chart
        loss_chart.reset(self.model_facts["vocab_size"])
        lr_chart.reset()
        for step, loss, lr in history["steps"]:
            loss_chart.add_step(step, loss)
            lr_chart.add_step(step, lr)
        for event in history["evals"]:
            self.apply_eval(event)
        for change in history["config_changes"]:
            loss_chart.add_marker(change["step"])
        if checkpoint := history.get("last_checkpoint"):
            self.stats.checkpoint_step = checkpoint["step"]
        step_ms = 1000 * self.stats.train_seconds / self.stats.step if self.stats.step else 0.0
        try:
            running = config_from_dict(config)
        except ConfigError as error:  # an engine from another version of minigpt
            self.config_pane.show_error(f"the engine's config does not fit this dashboard: {error}")
        else:
            self.config_pane.show_running(running, self.model_facts["vocab_size"], step_ms)
            self.generate_pane.set_defaults(running.sample)
        self.generate_pane.load_history(history.get("samples", []))
        self.title = f"minigpt-tui · {self.link.run_dir}"
        self.state = hello["state"]
        self.stats_panel.show(self.stats)
        self.log_line(
            f"attached to engine pid {hello['pid']} ({hello['state']}, step {hello['step']})"
        )

    def apply_event(self, event: dict[str, Any]) -> None:
        """Fold one engine event into the UI state."""
        kind = event.get("event")
        if kind == "step":
            self.stats.step = event["step"]
            self.stats.lr = event["lr"]
            self.stats.tokens_per_sec = event["tokens_per_sec"]
            self.stats.ms_per_step = event["ms_per_step"]
            self.stats.train_seconds = event["elapsed"]
            self.loss_chart.add_step(event["step"], event["loss"])
            self.lr_chart.add_step(event["step"], event["lr"])
        elif kind == "eval":
            self.apply_eval(event)
            self.log_line(
                f"step {event['step']}: train loss {event['train_loss']:.4f}, "
                f"val loss {event['val_loss']:.4f}"
            )
        elif kind == "state":
            self.state = event["state"]
            self.log_line(
                f"state: {event['state']}" + (f" ({event['reason']})" if event["reason"] else "")
            )
        elif kind == "checkpoint":
            if event["path"].endswith("model.ckpt"):
                self.stats.checkpoint_step = event["step"]
                self.log_line(f"saved {event['path']} (step {event['step']})")
        elif kind == "config_applied":
            self.apply_config_change(event)
        elif str(event.get("id")).startswith(CONFIG_REQUEST):
            self.config_refused(event)
        elif kind == "error" and str(event.get("id")).startswith(SAMPLE_REQUEST):
            self.log_line(f"sample not made: {event['message']}")
            self.generate_pane.failed(event["id"], event["message"])
        elif kind in ("config_rejected", "error", "log"):
            text = event.get("message") or event.get("reason", "")
            self.log_line(f"{kind}: {text}")
            level = "error" if kind == "error" else event.get("level")
            if level in ("error", "warning"):
                self.notify(text, title="engine", severity=level, timeout=10)
        elif kind in ("sample_token", "sample_done"):
            self.apply_sample(event)
        elif kind == "hello":
            self.apply_hello(event)

    def apply_config_change(self, event: dict[str, Any]) -> None:
        """Mark a change on the loss chart, log it, and show it as running in the editor."""
        self.loss_chart.add_marker(event["step"])
        changes = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in event["changes"].items())
        self.log_line(f"step {event['step']}: applied {changes or 'no change'}")
        pane = self.config_pane
        if pane.running is not None:
            values = {key: new for key, (_, new) in event["changes"].items()}
            pane.show_running(apply_values(pane.running, values))
            if any(key.startswith("sample.") for key in values):
                self.generate_pane.set_defaults(pane.running.sample)
        pane.status.say(f"Applied at step {event['step']}: {changes or 'no change'}.")

    def config_refused(self, event: dict[str, Any]) -> None:
        """The engine refused the editor's change: say why, in the pane."""
        text = event.get("message") or f"{event['reason']}: {', '.join(event['needs_restart'])}"
        self.log_line(f"config not applied: {text}")
        self.config_pane.show_error(text)

    def apply_eval(self, event: dict[str, Any]) -> None:
        """Chart an evaluation and keep its numbers."""
        self.loss_chart.add_eval(event["step"], event["train_loss"], event["val_loss"])
        self.stats.val_loss = event["val_loss"]
        self.stats.best_val_loss = event["best_val_loss"]

    def apply_sample(self, event: dict[str, Any]) -> None:
        """Stream a completion into the Generate pane."""
        if event["event"] == "sample_token":
            self.generate_pane.stream(event)
        else:
            self.generate_pane.finish(event)

    def log_line(self, text: str) -> None:
        """Add a line to the Log tab."""
        self.log_lines.append(text)
        self.log_view.write(text)

    # -- state ----------------------------------------------------------------

    def watch_state(self, old: str, new: str) -> None:
        """Show the state in the header, as a CSS class, and in which keys apply."""
        self.screen.remove_class(f"-{old.replace(' ', '-')}")
        self.screen.add_class(f"-{new.replace(' ', '-')}")
        self.stats_panel.border_title = new  # the header may be cut short on a narrow terminal
        facts = self.model_facts
        if facts:
            self.sub_title = (
                f"{new} · {facts['device']} · {facts['params'] / 1e6:.2f}M params · "
                f"vocab {facts['vocab_size']:,} {facts['tokenizer']}"
            )
        else:
            self.sub_title = new
        self.refresh_bindings()

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

    def action_show_tab(self, tab: str) -> None:
        """c / l: show the Config tab (and edit) or the Log tab."""
        self.query_one(TabbedContent).active = tab
        if tab == "config":
            self.config_pane.editor.focus()

    def action_toggle_log_scale(self) -> None:
        """y: switch the loss chart between linear and log y."""
        chart = self.loss_chart
        chart.log_scale = not chart.log_scale

    def action_zoom(self) -> None:
        """z: the tabs fill the screen (room for completions and the config), or back."""
        screen = self.screen
        screen.maximized = None if screen.maximized else self.query_one(TabbedContent)

    def action_compare(self) -> None:
        """o: pick other runs whose val curves to draw on the loss chart."""
        chosen = list(self.loss_chart.overlays)
        self.push_screen(CompareScreen(other_runs(self.link.run_dir), chosen), self.compare_chosen)

    def compare_chosen(self, names: list[str] | None) -> None:
        """Draw the picked runs' val curves (read now from their metrics.jsonl)."""
        if names is None:
            return
        parent = self.link.run_dir.resolve().parent
        self.loss_chart.set_overlays({name: val_curve(parent / name) for name in names})
        self.log_line(f"comparing with: {', '.join(names) or 'no other run'}")

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
        self.sample_requests += 1
        request = f"{SAMPLE_REQUEST}{self.sample_requests}"
        if self.link.send("sample", prompt=message.prompt, id=request, **message.settings):
            self.generate_pane.expect(request, message.prompt)
        else:
            self.generate_pane.status.say("No engine to sample from.", error=True)

    @on(GeneratePane.CancelRequested)
    def cancel_sample(self, message: GeneratePane.CancelRequested) -> None:
        """Stop the completion streaming in the Generate pane."""
        self.link.send("cancel_sample", sample_id=message.request)

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
        self.config_requests += 1
        values = {key: new for key, (_, new) in changes.items()}
        request = f"{CONFIG_REQUEST}{self.config_requests}"
        if not self.link.send("set", values=values, restart=restart, id=request):
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


def make_app(link: EngineLink) -> MiniGPTApp:
    """The one app factory, for the command line and the tests alike."""
    return MiniGPTApp(link)

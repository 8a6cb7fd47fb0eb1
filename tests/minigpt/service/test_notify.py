"""Notifications from real training runs to a webhook on 127.0.0.1: each notice once, the
last one before `minigpt train` exits, and a webhook that fails costs training nothing."""

import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from minigpt.cli.main import main
from minigpt.config import config_to_toml
from minigpt.events import AlertEvent, Event, NoticeEvent, StateEvent
from minigpt.service import notices, notifier, webhook
from minigpt.service.client import Client
from minigpt.service.notifier import Notifier
from minigpt.train import Trainer
from tests.minigpt.service.conftest import Receiver
from tests.minigpt.service.test_divergence import HUGE_LR
from tests.tiny import ENGINE, tiny_config

pytestmark = pytest.mark.trains


@pytest.fixture
def split_corpus(tmp_path: Path) -> Path:
    """Text whose train split ("abab...") says nothing of its val split ("cdcd..."): the
    val loss rises as the train loss falls, so training raises alerts within 10 steps."""
    path = tmp_path / "split.txt"
    path.write_text("ab" * 900 + "cd" * 100, encoding="utf-8")
    return path


def config_file(tmp_path: Path, corpus: Path, **values: object) -> Path:
    """The engines' tiny config on corpus with values on top, as a file."""
    path = tmp_path / "notify.toml"
    path.write_text(config_to_toml(tiny_config(corpus, **ENGINE | values)), encoding="utf-8")
    return path


def until(client: Client, heard: list[Event], test: Callable[[Event], bool]) -> None:
    """Wait for an event passing test, keeping every event on the way in heard."""

    def keep(event: Event) -> bool:
        """Keep the event; true when it is the one waited for."""
        heard.append(event)
        return test(event)

    client.wait_for(keep)


def in_state(state: str) -> Callable[[Event], bool]:
    """A test for the engine announcing this state."""
    return lambda event: isinstance(event, StateEvent) and event.state == state


def test_an_engine_posts_a_nan_pause_each_alert_and_its_finish_once(
    engines, receiver: Receiver, split_corpus: Path, tmp_path: Path
) -> None:
    """A run that raises alerts, pauses on a NaN loss, is resumed and finishes posts one
    notice for each alert (not for the diverged one), one for the pause and one for the
    finish, and sends the same notices to its dashboards."""
    values = {"notify.url": receiver.url, "train.max_iters": 40, "train.eval_interval": 5}
    # The lesson's learned positions memorise "abab" and fail on "cdcd"; rotary positions
    # learn "the token two back", which holds in both, so the val loss would fall instead.
    values |= {"model.position": "learned", "model.qk_norm": False}
    config = config_file(tmp_path, split_corpus, **values, **{"train.warmup_iters": 0})
    client = engines(tmp_path / "run", "--config", str(config), "--start")
    heard: list[Event] = []
    until(client, heard, lambda e: isinstance(e, AlertEvent) and e.kind != "diverged")
    client.send("set", values={"train.learning_rate": HUGE_LR})
    until(client, heard, in_state("paused"))
    client.send("set", values={"train.learning_rate": 3e-3})
    until(client, heard, lambda e: e.name == "config_applied")
    client.send("resume")
    until(client, heard, in_state("finished"))
    until(client, heard, lambda e: isinstance(e, NoticeEvent) and e.kind == "finished")
    alerts = [e for e in heard if isinstance(e, AlertEvent) and e.kind != "diverged"]
    assert alerts and any(e.kind == "diverged" for e in heard if isinstance(e, AlertEvent))
    posted = [post.json() for post in receiver.wait_for(len(alerts) + 2)]
    assert Counter(p["kind"] for p in posted) == {
        "alert": len(alerts),
        "diverged": 1,
        "finished": 1,
    }
    assert [(p["title"], p["step"]) for p in posted if p["kind"] == "alert"] == [
        (f"run: {a.kind} alert", a.step) for a in alerts
    ]
    (pause,) = [p for p in posted if p["kind"] == "diverged"]
    assert pause["title"] == "run: loss diverged, paused"
    assert "lower train.learning_rate" in pause["message"]
    told = [e for e in heard if isinstance(e, NoticeEvent)]
    assert [(n.kind, n.title, n.message) for n in told] == [
        (p["kind"], p["title"], p["message"]) for p in posted
    ]


@pytest.mark.parametrize(
    ("rate", "code", "title"),
    [(3e-3, 0, "run: finished at step 5"), (HUGE_LR, 2, "run: loss diverged, stopped")],
)
def test_minigpt_train_posts_its_last_notice_as_text_before_it_exits(
    receiver: Receiver, corpus_file: Path, tmp_path: Path, rate: float, code: int, title: str
) -> None:
    """`minigpt train` exits right after finishing, or on a diverged loss, and the notice
    of it has been received by then, by a webhook that takes its time: as plain text,
    titled in a header."""
    receiver.delay = 0.5
    config = config_file(tmp_path, corpus_file, **{"train.max_iters": 5})
    sets = {
        "notify.url": receiver.url,
        "notify.body": "text",
        "notify.on_alert": "false",
        "train.learning_rate": f"{rate:g}",
    }
    args = ["train", "--config", str(config), "--run-dir", str(tmp_path / "run")]
    assert main([*args, *(f"--set={key}={value}" for key, value in sets.items())]) == code
    (post,) = receiver.posts  # no waiting: it came before main returned
    assert post.headers["Title"] == title
    assert post.headers["Content-Type"] == "text/plain; charset=utf-8"
    if code == 0:
        assert post.body.decode().startswith("5 steps trained; val loss ")
    else:
        assert "lower train.learning_rate" in post.body.decode()


@pytest.mark.parametrize("down", ["nobody", "black_hole"])
def test_a_webhook_down_or_silent_costs_training_nothing_and_is_said_once(
    down: str,
    corpus_file: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With the webhook refusing or never answering, a run whose notices (a val loss
    target reached, then its finish) all fail trains to the end, its loop never waits on
    them, and its log says once that notifications fail."""
    monkeypatch.setattr(webhook, "ATTEMPT_TIMEOUT_S", 0.3)
    monkeypatch.setattr(webhook, "BACKOFF_S", 0.1)
    monkeypatch.setattr(webhook, "CLOSE_WAIT_S", 1.0)
    tries: list[str] = []
    urlopen = urllib.request.urlopen

    def counted(request: urllib.request.Request, *args: Any, **kwargs: Any) -> Any:
        """urlopen, counted."""
        tries.append(request.full_url)
        return urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", counted)
    took: list[float] = []
    see = Notifier.see

    def timed(self: Notifier, event: Event) -> None:
        """Notifier.see, timed."""
        started = time.perf_counter()
        see(self, event)
        took.append(time.perf_counter() - started)

    monkeypatch.setattr(Notifier, "see", timed)
    url = request.getfixturevalue(down)
    config = config_file(tmp_path, corpus_file, **{"train.max_iters": 20})
    args = ["train", "--config", str(config), "--run-dir", str(tmp_path / "run")]
    assert main([*args, f"--set=notify.url={url}", "--set=notify.val_loss_target=100"]) == 0
    out, err = capsys.readouterr()
    assert "step 20/20" in out
    said = [line for line in err.splitlines() if "notifications to" in line]
    assert len(said) == 1 and said[0].startswith("warning: notifications to http://127.0.0.1:")
    assert len(tries) >= 2  # the target's notice and the finish's both tried, and failed
    assert len(took) > 20 and max(took) < 0.05  # one try alone waits up to 0.3 s


def test_a_stuck_training_loop_is_told_while_it_is_stuck(
    receiver: Receiver, corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that hangs is posted as a stall by the watchdog while the loop is still
    stuck in it, once however long it hangs; then the run goes on to finish."""
    monkeypatch.setattr(notices, "STALL_FLOOR_S", 1.0)  # over any hiccup of a busy machine
    monkeypatch.setattr(notifier, "WATCH_S", 0.05)
    train_step = Trainer.train_step

    def hangs_at_15(self: Trainer) -> Any:
        """Trainer.train_step, but step 15 waits until the stall has been posted, and a
        few of the watchdog's looks beyond."""
        if self.step == 14:
            receiver.wait_for(1, timeout=30)
            time.sleep(10 * notifier.WATCH_S)
        return train_step(self)

    monkeypatch.setattr(Trainer, "train_step", hangs_at_15)
    config = config_file(tmp_path, corpus_file, **{"train.max_iters": 20})
    args = ["train", "--config", str(config), "--run-dir", str(tmp_path / "run")]
    assert main([*args, f"--set=notify.url={receiver.url}", "--set=notify.stall_after=3"]) == 0
    stall, finish = [post.json() for post in receiver.posts]
    assert (stall["kind"], stall["step"], finish["kind"]) == ("stalled", 14, "finished")
    assert stall["message"].startswith("step 15 has taken ")

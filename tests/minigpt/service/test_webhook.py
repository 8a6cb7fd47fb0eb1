"""The webhook sender against real local servers: what it posts, how it fails, and that
posting never waits."""

import base64
import time
from collections.abc import Iterator

import pytest

from minigpt.events import LogEvent, NoticeEvent
from minigpt.service import webhook
from minigpt.service.webhook import Webhook
from tests.minigpt.service.conftest import Receiver

NOTICE = NoticeEvent("finished", "run: finished at step 3", "3 steps trained", 3)


@pytest.fixture
def sender(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    """A started Webhook for the run in /runs/run, whose tries wait 0.3 s at most and 0.1 s
    apart (a send that blocked its caller would take longer than 0.3 s), closed after."""
    monkeypatch.setattr(webhook, "ATTEMPT_TIMEOUT_S", 0.3)
    monkeypatch.setattr(webhook, "BACKOFF_S", 0.1)
    monkeypatch.setattr(webhook, "CLOSE_WAIT_S", 1.0)
    hook = Webhook("/runs/run")
    hook.start()
    yield hook
    hook.close()


def settled(hook: Webhook, timeout: float = 10.0) -> list[LogEvent]:
    """What the sender said, once it has nothing left to send."""
    deadline = time.monotonic() + timeout
    while hook.queue.unfinished_tasks:
        assert time.monotonic() < deadline, "the sender did not finish in time"
        time.sleep(0.01)
    return hook.said()


def test_a_notice_is_posted_as_json_or_as_plain_text_titled_in_a_header(
    sender: Webhook, receiver: Receiver
) -> None:
    """JSON holds the notice and the run; text is the message, with the title (control
    characters blanked, RFC 2047 when not ASCII) in a Title header, as ntfy takes it."""
    sender.post(receiver.url, "json", NOTICE)
    odd = NoticeEvent("target", "rün\n: val loss reached 2", "val loss 1.9 ✓", 40)
    sender.post(receiver.url, "text", odd)
    as_json, as_text = receiver.wait_for(2)
    assert as_json.path == "/hook/secret-topic"
    assert as_json.headers["Content-Type"] == "application/json"
    assert as_json.json() == {
        "kind": "finished",
        "title": "run: finished at step 3",
        "message": "3 steps trained",
        "step": 3,
        "time": NOTICE.time,
        "run_dir": "/runs/run",
    }
    assert as_text.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert as_text.body.decode() == "val loss 1.9 ✓"
    encoded = as_text.headers["Title"]
    assert encoded.startswith("=?UTF-8?B?") and encoded.endswith("?=")
    assert base64.b64decode(encoded[10:-2]).decode() == "rün : val loss reached 2"
    assert as_json.headers["User-Agent"] == as_text.headers["User-Agent"] == "minigpt-tui"
    assert settled(sender) == []


def test_a_failing_webhook_is_said_once_until_a_notice_gets_through(
    sender: Webhook, receiver: Receiver
) -> None:
    """A 500 is tried three times; three notices failing so are one warning, naming the
    host but not the path; a notice that gets through is said, and re-arms the warning."""
    receiver.status = 500
    for _ in range(3):
        sender.post(receiver.url, "json", NOTICE)
    (warning,) = settled(sender)
    assert len(receiver.posts) == 3 * webhook.ATTEMPTS
    host = receiver.url.removesuffix("hook/secret-topic")
    assert warning.level == "warning"
    assert warning.message.startswith(f"notifications to {host}... (notify.url) fail: ")
    assert "answered 500 Internal Server Error; training goes on" in warning.message
    assert "secret-topic" not in warning.message
    receiver.status = 200
    sender.post(receiver.url, "json", NOTICE)
    assert [(s.level, s.message) for s in settled(sender)] == [
        ("info", f"notifications to {host}... get through again")
    ]
    receiver.status = 404
    sender.post(receiver.url, "json", NOTICE)
    assert ["404 Not Found" in s.message for s in settled(sender)] == [True]


@pytest.mark.parametrize("down", ["nobody", "black_hole"])
def test_posting_never_waits_for_a_webhook_that_is_down_or_silent(
    sender: Webhook, down: str, request: pytest.FixtureRequest
) -> None:
    """To a port nobody listens on, or a server that never answers, each post returns at
    once, even past the queue's bound; the failure is said once, and close() waits at
    most CLOSE_WAIT_S for the notices still queued."""
    url = request.getfixturevalue(down)
    took = []
    for _ in range(webhook.QUEUE_SIZE + 10):
        started = time.perf_counter()
        sender.post(url, "json", NOTICE)
        took.append(time.perf_counter() - started)
    assert max(took) < 0.05  # one try alone waits up to 0.3 s, and tries are 0.1 s apart
    assert sender.queue.qsize() <= webhook.QUEUE_SIZE
    deadline = time.monotonic() + 10
    while not (said := sender.said()):
        assert time.monotonic() < deadline, "the failure was never said"
        time.sleep(0.01)
    started = time.monotonic()
    sender.close()
    assert time.monotonic() - started < webhook.CLOSE_WAIT_S + 0.5
    said += sender.said()
    assert len(said) == 1 and "fail: " in said[0].message
    if down == "black_hole":
        assert "no answer within 0.3 s" in said[0].message
    else:
        assert "Connection refused" in said[0].message


def test_close_sends_what_is_queued_before_it_returns(receiver: Receiver) -> None:
    """A notice posted just before close() has been received when close() returns (what
    lets `minigpt train` exit right after finishing)."""
    hook = Webhook("/runs/run")
    hook.start()
    hook.post(receiver.url, "json", NOTICE)
    hook.close()
    assert [post.kind for post in receiver.posts] == ["finished"]

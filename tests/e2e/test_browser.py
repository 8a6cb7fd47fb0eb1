"""The dashboard in a real browser: `minigpt-tui --serve` driven by Debian's headless Chromium.

Playwright drives the system's /usr/bin/chromium (nothing downloads a browser). The page
draws on a canvas, so the checks read the page's state classes, its screenshots and
what the engine says, never the terminal's text.
"""

import base64
import http.client
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from minigpt.config import config_to_toml
from minigpt.events import StateEvent, StepEvent
from minigpt.service.client import Client
from tests.e2e.sshd import accepts, free_port, sshd
from tests.e2e.terminal import until
from tests.e2e.tools import require_tool
from tests.tiny import ENGINE, tiny_config

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and quiet on a machine with no way out: without the networking flags
# Chromium tries Google's hosts at every start.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_TABS = 2
EVIL_PAGE = """<!DOCTYPE html><script>
const socket = new WebSocket("ws://127.0.0.1:{port}/ws");
window.verdict = new Promise(done => {{
  socket.onopen = () => done("open");
  socket.onclose = () => done("refused");
}});
</script>"""


class Served(NamedTuple):
    """A `--serve` process, its link and port, and its run."""

    process: subprocess.Popen[str]
    link: str
    port: int
    run_dir: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """minigpt-tui --serve on a new tiny run, at most MAX_TABS tabs; at the end the server,
    any tab left and the engine are stopped."""
    folder = tmp_path_factory.mktemp("served")
    corpus = folder / "corpus.txt"
    corpus.write_text("".join(f"the cat sat on mat number {i % 7}.\n" for i in range(400)))
    config = folder / "tiny.toml"
    config.write_text(config_to_toml(tiny_config(corpus, **ENGINE)))
    run_dir = folder / "run"
    command = [sys.executable, "-m", "tui", "--serve", "--port", "0"]
    command += ["--max-tabs", str(MAX_TABS), "--run-dir", str(run_dir), "--config", str(config)]
    env = os.environ | {"MINIGPT_CACHE": str(folder / "cache")}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    try:
        link = process.stdout.readline().strip()  # the first line, once the engine is up
        assert link.startswith("http://127.0.0.1:"), f"first line: {link!r}"
        yield Served(process, link, int(link.split(":")[2].split("/")[0]), run_dir)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        for pid in tabs(run_dir):
            os.kill(pid, signal.SIGKILL)
        lock = run_dir / "engine.lock"
        if lock.exists() and (engine := lock.read_text().strip()).isdigit():
            os.kill(int(engine), signal.SIGKILL)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (the test is skipped without it, failed on CI)."""
    require_tool("chromium", "chromium", CHROMIUM)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def tabs(run_dir: Path) -> list[int]:
    """The pids of the dashboards that tabs started for run_dir."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # just gone
            continue
        if b"tui" in args and b"--attach" in args and str(run_dir).encode() in args:
            found.append(int(cmdline.parent.name))
    return found


def status_of(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status of a GET on the server."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


def websocket_status(port: int, **headers: str) -> int:
    """The status of a websocket handshake on /ws (101 when it is accepted)."""
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"}
    return status_of(port, "/ws", {**upgrade, "Sec-WebSocket-Key": key, **headers})


def blank(shot: bytes) -> bool:
    """Whether a screenshot is (nearly) one colour: nothing drawn."""
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 24) or []
    commonest = max(count for count, _ in colours)
    return len(colours) < 16 or commonest > 0.9 * image.width * image.height


def drawn(page: Page) -> bytes:
    """A screenshot of the page once its terminal has drawn (not blank)."""
    page.wait_for_selector("body.-first-byte", timeout=60_000)
    return until(
        lambda: b"" if blank(shot := page.screenshot()) else shot,
        lambda: "the page stayed blank",
        timeout=30,
    )


def changes(page: Page, before: bytes) -> bytes:
    """A later screenshot of the page that differs from before: it is live."""
    return until(
        lambda: shot if (shot := page.screenshot()) != before else b"",
        lambda: "the page stopped changing while the run trains",
        timeout=30,
    )


def test_no_token_no_page_and_no_process(served: Served, browser: Browser, tmp_path: Path) -> None:
    """Without the link's cookie every request is refused and starts no dashboard; with it, a
    websocket from another origin (another port of the same host, which gets the cookie) is
    refused too."""
    port = served.port
    assert status_of(port, "/") == 401
    assert status_of(port, "/?token=guessed") == 401
    assert status_of(port, "/static/js/textual.js") == 401
    assert websocket_status(port, Origin=f"http://127.0.0.1:{port}") == 401
    context = browser.new_context()
    try:
        exchange = context.request.get(served.link, max_redirects=0)
        assert exchange.status == 303 and exchange.headers["location"] == "./"
        (cookie,) = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        admitted = {"Cookie": f"{cookie['name']}={cookie['value']}"}
        assert status_of(port, "/static/js/textual.js", admitted) == 200
        assert websocket_status(port, **admitted) == 403  # no Origin
        assert websocket_status(port, **admitted, Origin="http://127.0.0.1:1") == 403
        evil = context.new_page()
        evil_port = free_port()
        (tmp_path / "evil.html").write_text(EVIL_PAGE.format(port=port))
        site = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(evil_port), "--bind", "127.0.0.1"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            until(lambda: accepts(evil_port), lambda: "the other site never listened", 20)
            evil.goto(f"http://127.0.0.1:{evil_port}/evil.html")
            assert evil.evaluate("window.verdict") == "refused"
        finally:
            site.kill()
            site.wait()
    finally:
        context.close()
    assert tabs(served.run_dir) == []


def test_tabs_are_live_attached_dashboards(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    """Through `ssh -L`: the page draws from this server alone (its font blocked, it falls
    back), a key pressed in it starts training, a second tab is a second live viewer, one
    tab too many gets a page saying so, and closing a tab ends its dashboard, not the run."""
    watcher = Client.connect(served.run_dir)
    with sshd(tmp_path / "ssh") as options:
        local = free_port()
        forward = ["ssh", "-N", "-L", f"{local}:127.0.0.1:{served.port}", *options, "127.0.0.1"]
        tunnel = subprocess.Popen(forward, stdin=subprocess.DEVNULL)
        try:
            link = served.link.replace(f":{served.port}/", f":{local}/")
            until(lambda: _answers(local), lambda: "ssh -L never forwarded", timeout=20)
            context = browser.new_context(viewport={"width": 1200, "height": 800})
            try:
                _journey(context, link, served, watcher)
            finally:
                context.close()
        finally:
            tunnel.kill()
            tunnel.wait()
            watcher.close()


def _answers(port: int) -> bool:
    """Whether the tunnel's local end reaches the server."""
    try:
        return status_of(port, "/") == 401
    except OSError:
        return False


def _journey(context: BrowserContext, link: str, served: Served, watcher: Client) -> None:
    """The steps of test_tabs_are_live_attached_dashboards, in one browser context."""
    origin = link.split("/?")[0]
    asked: list[str] = []
    context.on("request", lambda request: asked.append(request.url))
    first = context.new_page()
    first.route("**/*.ttf", lambda route: route.abort())
    first.goto(link)
    drawn(first)
    first.click("#terminal", position={"x": 300, "y": 200})
    first.keyboard.press(" ")
    watcher.wait_for(lambda e: isinstance(e, StateEvent) and e.state == "running", 60)
    watcher.wait_for(StepEvent, 30)

    second = context.new_page()
    second.goto(origin + "/")
    live = changes(second, drawn(second))
    if folder := os.environ.get("MINIGPT_SCREENSHOTS"):  # the README's picture
        Path(folder, "browser.png").write_bytes(live)
    changes(first, first.screenshot())
    assert len(tabs(served.run_dir)) == MAX_TABS

    third = context.new_page()
    response = third.goto(origin + "/")
    assert response is not None and response.status == 503
    assert "Close one" in third.inner_text("body")

    alone = [url for url in asked if not url.startswith(origin + "/")]
    assert alone == [], f"the page asked other hosts: {alone}"

    first.close()
    until(lambda: len(tabs(served.run_dir)) == 1, lambda: "the closed tab's dashboard lives on")
    closed = time.time()
    watcher.wait_for(lambda e: isinstance(e, StepEvent) and e.time > closed, 30)  # trains on
    changes(second, second.screenshot())

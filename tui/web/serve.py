"""`minigpt-tui --serve`: find or start the run's engine, then serve its dashboard to browsers.

Stdout gets one line, the link with its token (so a script can read it); what happens
after (the engine's states, tabs opening and closing, warnings) goes to stderr with the
time. This process stays attached to the engine while it serves, so an engine with no
tab open does not idle out; Ctrl+C stops serving, closes the tabs and leaves the engine
training. See server.py for the routes and gate.py for who gets in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shlex
import signal
import socket
import sys
import threading
import time

from aiohttp import web

from minigpt.errors import EngineError, MiniGPTError
from minigpt.events import ErrorEvent, NoticeEvent, StateEvent
from tui.link import Connection, Link
from tui.web.gate import Gate
from tui.web.server import WebDashboard


def say(text: str) -> None:
    """One line of news on stderr, with the time."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def is_loopback(host: str) -> bool:
    """Whether host names this machine's loopback only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(link: Link, host: str, port: int, max_tabs: int) -> int:
    """Serve the run of `link` until Ctrl+C or SIGTERM; 2 with one line when it cannot."""
    if not is_loopback(host):
        say(
            f"warning: serving on {host}, not only this machine: anyone who can reach port "
            f"{port} and has the link can steer this run, and nothing is encrypted. The safe "
            "way is the default 127.0.0.1 and `ssh -L` from your laptop (README)."
        )
    run_dir = link.run_dir.resolve()
    command = shlex.join([sys.executable, "-m", "tui", "--attach", str(run_dir)])
    dashboard = WebDashboard(command, Gate(), f"minigpt: {run_dir.name}", max_tabs, say)
    try:
        asyncio.run(_serve(dashboard, link, host, port))
    except MiniGPTError as error:
        print(f"minigpt-tui: error: {error}", file=sys.stderr)
        return 2
    finally:
        link.close()
    say("stopped serving; the engine goes on (minigpt-tui --attach reaches it)")
    return 0


async def _serve(dashboard: WebDashboard, link: Link, host: str, port: int) -> None:
    """Listen (before any engine starts, so a taken port costs nothing), find or start
    the engine, print the link, and serve until a signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(dashboard.application(), handle_signals=False)
    await runner.setup()
    leaving = threading.Event()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            raise MiniGPTError(
                f"cannot serve on {host}:{port}: {error.strerror or error}"
                " (--host and --port choose another)"
            ) from None
        engine = await asyncio.to_thread(link.open, say, stop.is_set)  # Ctrl+C cancels it
        threading.Thread(target=_follow, args=(engine, leaving), daemon=True).start()
        bound = runner.addresses[0][1]  # the port the system chose for --port 0
        print(dashboard.gate.link(f"http://{_url_host(host)}:{bound}"), flush=True)
        say(f"serving {dashboard.title} to at most {dashboard.max_tabs} tabs; Ctrl+C stops")
        await stop.wait()
    finally:
        leaving.set()
        await runner.cleanup()  # closes the tabs, which ends their dashboards


def _url_host(host: str) -> str:
    """The host as a URL names it: this machine's name for every interface, IPv6 bracketed."""
    if host in ("", "0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def _follow(engine: Connection, leaving: threading.Event) -> None:
    """Report the engine's states, notices and fatal errors until it goes away, or we do."""
    while True:
        try:
            event = engine.next_event(timeout=60.0)
        except (EngineError, OSError):
            if not leaving.is_set():
                say("the engine stopped; tabs opened now show why and can start it again")
            return
        if isinstance(event, StateEvent):
            say(f"engine: {event.state}" + (f" ({event.reason})" if event.reason else ""))
        elif isinstance(event, NoticeEvent):
            say(f"\a{event.title}: {event.message}")  # the bell, as a dashboard rings it
        elif isinstance(event, ErrorEvent) and event.fatal:
            say(f"engine: {event.message}")

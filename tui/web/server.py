"""The web server of `minigpt-tui --serve`: one attached dashboard per browser tab.

Three routes, all behind the gate (gate.py): `/` the page (page.html), `/ws` the tab's
terminal stream, `/static/` textual-serve's terminal script, styles and font. Each
websocket starts one dashboard process through textual-serve's `AppService`, attached to
the run's engine; closing the tab ends that process, never the engine.

What textual-serve's own server lacks, and this one adds: the token and cookie, the
Origin check, a limit on tabs, and a page whose every URL is relative (its websocket
URL is built in the browser from the page's own address), so it works through
`ssh -L` on any local port and never asks another host for anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from tui.web.gate import Gate, same_origin

STATIC = Path(str(resources.files("textual_serve") / "static"))
PAGE = Template((resources.files("tui.web") / "page.html").read_text(encoding="utf-8"))
HEARTBEAT_S = 15.0  # websocket pings: a tab whose laptop slept is noticed and closed
TAB_STOP_S = 10.0  # how long a closed tab's dashboard gets to exit before it is killed
# The page may load only what this server serves, and no other page may frame it.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def notice_page(status: int, title: str, text: str) -> web.Response:
    """A plain page that says why there is no dashboard (401, 403, 503)."""
    body = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'</head><body class="-refused"><h1>{title}</h1><p>{text}</p></body></html>'
    )
    return web.Response(status=status, text=body, content_type="text/html", headers=HEADERS)


class WebDashboard:
    """The aiohttp application that serves one run's dashboard to browser tabs."""

    def __init__(
        self, command: str, gate: Gate, title: str, max_tabs: int, say: Callable[[str], None]
    ) -> None:
        """Serve `command` (a dashboard attached to the run) to at most max_tabs tabs at
        once; `say` reports tabs opening and closing."""
        self.command = command
        self.gate = gate
        self.title = title
        self.max_tabs = max_tabs
        self.say = say
        self.tabs: set[web.WebSocketResponse] = set()
        self.reserved = 0  # tabs admitted whose dashboards are starting or running
        self.downloads = DownloadManager()

    def application(self) -> web.Application:
        """The routes, behind the gate."""
        app = web.Application(middlewares=[self._guard])
        app.add_routes(
            [
                web.get("/", self._page),
                web.get("/ws", self._terminal),
                web.static("/static", STATIC),
            ]
        )
        app.on_shutdown.append(self._close_tabs)
        return app

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Trade the link's token for the cookie; without the cookie, refuse."""
        if request.path == "/" and self.gate.opens(request.query):
            response = web.HTTPSeeOther("./", headers=HEADERS)  # relative: the token leaves
            response.set_cookie(
                self.gate.cookie_name,
                self.gate.cookie_value(),
                httponly=True,
                samesite="Strict",
                path="/",
            )
            return response
        if not self.gate.admits(request.cookies):
            return notice_page(
                401,
                "Open the link with its token",
                "This dashboard opens only from the link that <code>minigpt-tui --serve</code>"
                " printed as its first line.",
            )
        return await handler(request)

    async def _page(self, request: web.Request) -> web.Response:
        """The page that runs the terminal, or a page saying every tab is taken."""
        if self.reserved >= self.max_tabs:
            return self._full()
        body = PAGE.substitute(title=self.title)
        return web.Response(text=body, content_type="text/html", headers=HEADERS)

    def _full(self) -> web.Response:
        """503: as many tabs as allowed are open."""
        return notice_page(
            503,
            "Every dashboard tab is taken",
            f"{self.max_tabs} tabs already show this run. Close one and reload this page "
            "(<code>--max-tabs</code> sets the limit).",
        )

    async def _terminal(self, request: web.Request) -> web.StreamResponse:
        """One tab's dashboard: start its process, relay keys and screen until either ends."""
        if not same_origin(request.headers.get("Origin"), request.host):
            return notice_page(403, "Refused", "A dashboard opens only from its own page.")
        if self.reserved >= self.max_tabs:
            return self._full()
        self.reserved += 1
        socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
        service: AppService | None = None

        async def close() -> None:
            """The dashboard exited (its user quit): the page shows that it ended."""
            await socket.close()

        try:
            await socket.prepare(request)
            self.tabs.add(socket)
            self.say(f"a tab opened ({self.reserved} of at most {self.max_tabs})")
            service = AppService(
                self.command,
                write_bytes=socket.send_bytes,
                write_str=socket.send_str,
                close=close,
                download_manager=self.downloads,
            )
            await service.start(_size(request, "width", 80), _size(request, "height", 24))
            await self._relay(socket, service)
        finally:
            self.tabs.discard(socket)
            self.reserved -= 1
            if service is not None:
                await _stop(service)
            self.say(f"a tab closed ({self.reserved} open)")
        return socket

    async def _relay(self, socket: web.WebSocketResponse, service: AppService) -> None:
        """Pass the browser's keys, resizes and focus to the dashboard; answer its pings."""
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                kind, data = json.loads(message.data)
            except (ValueError, TypeError):
                continue  # not a message the page sends: ignored, as the terminal would
            if kind == "stdin" and isinstance(data, str):
                await service.send_bytes(data.encode("utf-8"))
            elif kind == "resize" and isinstance(data, dict):
                await service.set_terminal_size(
                    _cells(data, "width", 80), _cells(data, "height", 24)
                )
            elif kind == "ping":
                await socket.send_json(["pong", data])
            elif kind == "blur":
                await service.blur()
            elif kind == "focus":
                await service.focus()

    async def _close_tabs(self, _app: web.Application) -> None:
        """On the way out: close every tab, which ends its dashboard."""
        for socket in list(self.tabs):
            await socket.close()


async def _stop(service: AppService) -> None:
    """Ask a tab's dashboard to quit; kill it if it has not within TAB_STOP_S."""
    try:
        await asyncio.wait_for(service.stop(), TAB_STOP_S)
    except TimeoutError:
        process: Any = getattr(service, "_process", None)  # AppService keeps it private
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()


def _bounded(cells: int) -> int:
    """A terminal dimension kept within sane bounds."""
    return max(1, min(1000, cells))


def _size(request: web.Request, name: str, default: int) -> int:
    """A terminal dimension from the websocket URL's query (default when not a number)."""
    try:
        return _bounded(int(request.query.get(name, default)))
    except ValueError:
        return default


def _cells(data: dict[str, Any], name: str, default: int) -> int:
    """A terminal dimension from a resize message (default when not an integer)."""
    value = data.get(name)
    return _bounded(value) if isinstance(value, int) else default

"""Who may open the browser view, and from where.

A run's dashboard can stop it, change its config and read its text, so the web server
lets in only whoever holds the link it printed:

- The link carries a random token. The first request that shows it gets an HttpOnly,
  SameSite=Strict cookie instead and is sent on to a URL without the token, so the
  token leaves the address bar and the page's scripts never see the cookie.
- Every other request (the page, its scripts, the websocket) needs that cookie;
  without it the answer is 401 and no dashboard process starts.
- A websocket must come from the page's own origin. Browsers send cookies with a
  websocket opened by any page on the same site (every localhost port is one site)
  and apply no CORS to it, so the Origin header is what tells our page from another.

Nothing here knows HTTP: the server asks these questions with the request's values.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit


class Gate:
    """The secret link of one `--serve`, and the checks every request passes."""

    def __init__(self) -> None:
        """A fresh token for the link and a different one for the cookie."""
        self.token = secrets.token_urlsafe(24)
        self._session = secrets.token_urlsafe(32)
        # Named after the token: two servers on one host (cookies ignore the port)
        # keep their cookies apart.
        self.cookie_name = "minigpt-" + hashlib.sha256(self.token.encode()).hexdigest()[:12]

    def link(self, base: str) -> str:
        """The URL to print: base (scheme, host and port) with the token."""
        return f"{base}/?token={self.token}"

    def opens(self, query: Mapping[str, str]) -> bool:
        """Whether a request's query carries the link's token."""
        return hmac.compare_digest(query.get("token", ""), self.token)

    def cookie_value(self) -> str:
        """What the cookie holds once the token was shown."""
        return self._session

    def admits(self, cookies: Mapping[str, str]) -> bool:
        """Whether a request's cookies include ours."""
        return hmac.compare_digest(cookies.get(self.cookie_name, ""), self._session)


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a websocket's Origin header names the host it was sent to (the page's own).

    Compared with the Host header, not with the address we listen on, so a page reached
    through `ssh -L` on another local port, or under another name, still matches itself.
    """
    if not origin or not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()

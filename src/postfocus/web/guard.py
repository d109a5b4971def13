"""What the web app lets in: a host allow-list, changes only from its own page, and security headers.

A page on another web site can make the browser send requests to this local
server; :class:`GuardMiddleware` refuses every change (POST, PUT, PATCH,
DELETE) that does not come from the app's own page with :data:`CHANGE_HEADER`,
and answers only to the host names it serves (against DNS rebinding).
"""

from __future__ import annotations

from typing import Any, Iterable
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CHANGE_HEADER", "CSP", "GuardMiddleware", "error", "host_names"]

CHANGE_HEADER = "X-Postfocus"  # every POST, PUT, PATCH or DELETE must carry "X-Postfocus: 1"

CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self'")


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """A JSON error answer ``{"error": message, **extra}`` with HTTP ``status``."""
    return JSONResponse({"error": message, **extra}, status_code=status)


def host_names(hosts: Iterable[str] | str | None) -> frozenset[str] | None:
    """The host names to answer to, lower case, without IPv6 brackets; a string is one name (``"localhost"`` allowed
    its letters, so every request was refused: web23), None is any.

    Raises
    ------
    TypeError
        For a name that is not a string, or ``hosts`` not iterable.
    """
    if hosts is None:
        return None
    names = [hosts] if isinstance(hosts, str) else list(hosts)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"allowed_hosts: host names are strings, not {type(name).__name__}")
    return frozenset(name.lower().strip("[]") for name in names)


def _netloc(url: str, *, part: str = "netloc") -> str | None:
    """``url``'s network location (or ``part`` of it), lower case; None when no URL parser can read it (``Host: [``
    raised "Invalid IPv6 URL", a 500 with a traceback: review20)."""
    try:
        return (getattr(urlsplit(url), part) or "").lower()
    except ValueError:
        return None


class GuardMiddleware:
    """Host allow-list, same-origin check for changes, and security headers."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] | str | None):
        self.app = app
        self.allowed = host_names(allowed_hosts)

    @staticmethod
    def refuse_change(headers: dict[str, str], host: str) -> str | None:
        """Why a state-changing request is refused, or None to let it through.

        It must come from this server's own page: no other origin (``Origin: null``, what a
        sandboxed frame or a file sends, included), and it must carry :data:`CHANGE_HEADER`, which a
        form on another site cannot send and a script there can only send after a CORS preflight
        that this server never grants.
        """
        origin = headers.get("origin")
        if origin is not None and (origin == "null" or _netloc(origin) != host.lower()):
            return "Requests from other web sites are refused."
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return "Requests from other web sites are refused."
        if headers.get(CHANGE_HEADER.lower()) != "1":
            return (f"Changes need the header '{CHANGE_HEADER}: 1' (the postfocus page sends it; scripts "
                    "must add it). It keeps other web sites from changing anything here.")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        hostname = _netloc(f"//{host}", part="hostname")
        if self.allowed is not None and hostname not in self.allowed:
            await error(400, f"This server answers only to {', '.join(sorted(self.allowed))}.")(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            refused = self.refuse_change(headers, host)
            if refused:
                await error(403, refused)(scope, receive, send)
                return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                         (b"x-frame-options", b"DENY")]
                names = {k.lower() for k, _ in message.get("headers", [])}
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", CSP.encode()))
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-cache"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)

"""Writes come from this site: a request that changes something (any method but GET, HEAD and
OPTIONS) and is not carried by a bearer token is refused with a 403 when its `Origin` (or,
without one, its `Referer`) names another host than the one it was sent to.

The sign-in cookie is `SameSite=Strict`, so a browser should not send it with another site's
form; this is the server's own check beside it (an older browser, a cookie set before, a
lookalike name under the same site). It refuses such a write whether the server wants a token
or not: without a token no cookie is needed for an upload, so another site's form is the
danger itself. A bearer token cannot come from another site's form (and a browser's fetch with
one needs a CORS preflight this server never grants), so API clients are left alone, as is a
request naming no origin at all (a script, `curl`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
DEFAULT_PORTS = {"http": 80, "https": 443}


def _normal_host(host: str, scheme: str) -> str:
    """`host[:port]` lowercased, the scheme's default port left out ("" when unreadable)."""
    try:
        parts = urlsplit(f"//{host}")
        name, port = (parts.hostname or ""), parts.port
    except ValueError:
        return ""
    return name if port in (None, DEFAULT_PORTS.get(scheme)) else f"{name}:{port}"


def foreign_origin(headers: dict[bytes, bytes], scheme: str) -> str | None:
    """The origin a request says it comes from, when that is not the host it was sent to;
    None when it names none, or this host. `Origin: null` (a sandboxed frame, a data: page)
    counts as foreign."""
    claimed = headers.get(b"origin") or headers.get(b"referer")
    if not claimed:
        return None
    claimed_text = claimed.decode("latin-1")
    if claimed_text == "null":
        return claimed_text
    try:
        parts = urlsplit(claimed_text)
    except ValueError:
        return claimed_text
    own = _normal_host(headers.get(b"host", b"").decode("latin-1"), scheme)
    # The scheme is not compared: behind a proxy that ends TLS the server sees http while the
    # browser says https, and the host alone is what another site cannot claim.
    if own and _normal_host(parts.netloc, parts.scheme) == own:
        return None
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else claimed_text


def carries_bearer(headers: dict[bytes, bytes]) -> bool:
    return headers.get(b"authorization", b"").lower().startswith(b"bearer ")


class SameOriginWrites:
    """ASGI middleware: a cross-site write without a bearer token gets a 403, before its body
    is read."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method", "GET") not in SAFE_METHODS:
            headers = dict(scope.get("headers", []))
            origin = foreign_origin(headers, scope.get("scheme", "http"))
            if origin is not None and not carries_bearer(headers):
                host = headers.get(b"host", b"").decode("latin-1")
                detail = (
                    f"a cross-site request is refused: it comes from {origin}, not from "
                    f"{host or 'this server'} (send the API token as a bearer header instead)"
                )
                await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)

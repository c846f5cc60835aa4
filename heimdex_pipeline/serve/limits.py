"""Request bodies stop at their limit: a declared `Content-Length` over it is refused before a
byte is read, and a body that runs past it (chunked, or lying about its length) is cut off as
it streams in, so an oversized upload is never spooled to disk whole."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A multipart body carries its boundaries and part headers beside the file.
MULTIPART_SLACK = 64 * 1024


def _message(what: str, limit: int) -> str:
    return f"the {what} is larger than {limit / 2**20:g} MB"


class BodyTooLarge(HTTPException):
    """413, raised while the body streams in (an HTTPException, so that the form parser
    passes it on as it is instead of calling the body malformed)."""

    def __init__(self, what: str, limit: int):
        super().__init__(413, _message(what, limit))


def too_large(what: str, limit: int) -> JSONResponse:
    return JSONResponse({"detail": _message(what, limit)}, status_code=413)


class BodyLimits:
    """ASGI middleware: `limits(method, path)` gives (what, bytes) for a bounded route."""

    def __init__(self, app: ASGIApp, limits: Callable[[str, str], tuple[str, int] | None]):
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        bound = (
            self.limits(scope.get("method", ""), scope.get("path", ""))
            if (scope["type"] == "http")
            else None
        )
        if bound is None:
            await self.app(scope, receive, send)
            return
        what, limit = bound
        allowed = limit + MULTIPART_SLACK
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > allowed:
            await too_large(what, limit)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > allowed:
                    raise BodyTooLarge(what, limit)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await too_large(what, limit)(scope, receive, send)

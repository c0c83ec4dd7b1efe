"""Request bodies bounded before anything reads them: a pure ASGI middleware in front of
authentication and body parsing (FastAPI parses a JSON body before it checks the key), and
read_bounded for routes that read their raw body under a smaller limit."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import Problem, problem_response
from schemas.events import MAX_PAYLOAD_BYTES

# Largest request body of any route without a limit of its own (bytes). The largest
# legitimate ones are far below it: a dead-letter replay of 10,000 ids is ~200 KiB, a
# device's payload at most 256 KiB (SPEC §5); routes may refuse less (read_bounded).
MAX_BODY_BYTES = 1024 * 1024


class BodyLimit:
    """Answers 413 problem+json for a request whose `Content-Length` is above its path's
    limit without calling the app, and for a streamed (chunked) body as soon as the bytes
    received pass it: the app then sees the client gone, and what it answers is dropped.
    If the app had already started its response, the request just ends there."""

    def __init__(
        self, app: ASGIApp, limit: int = MAX_BODY_BYTES, larger: Mapping[str, int] | None = None
    ) -> None:
        """`larger`: exact paths allowed a limit above `limit` (bytes)."""
        self.app = app
        self.limit = limit
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.larger.get(path, self.limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            detail = f"the request body is {declared} bytes; {path} takes at most {limit}"
            await problem_response(413, "too-large", detail, path)(scope, receive, send)
            return

        received = 0
        started = False  # whether a response (the app's or ours) has begun
        refused = False  # whether this middleware cut the body off

        async def receive_bounded() -> Message:
            nonlocal received, started, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        started = True
                        detail = f"the request body exceeds {limit} bytes, the most {path} takes"
                        await problem_response(413, "too-large", detail, path)(scope, receive, send)
                    # To the app the client has gone: it stops reading and its answer
                    # is dropped below.
                    return {"type": "http.disconnect"}
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_bounded, send_unless_refused)
        except ClientDisconnect:
            # A route reading the stream itself (read_bounded) meets the disconnect we
            # made; a real client's disconnect is the server's to handle, as before.
            if not refused:
                raise


def _content_length(scope: Scope) -> int | None:
    """The declared body size (bytes), or None when absent or not a number (the server
    refuses those requests itself)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def read_bounded(request: Request, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """The body, refusing more than `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "too-large", f"payload is {declared} bytes, at most {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, "too-large", f"payload exceeds {limit} bytes")
    return bytes(body)

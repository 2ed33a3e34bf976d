"""Request body cap: a pure ASGI middleware (no per-request task or buffering overhead).

A declared ``Content-Length`` over the cap is refused before anything is read; a chunked
body is counted as it arrives and refused as soon as it passes the cap.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recommender.api.errors import error_response
from recommender.api.schemas import ErrorCode


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = error_response(
                413, ErrorCode.PAYLOAD_TOO_LARGE,
                f"request body of {declared} bytes is over the limit of {self.max_bytes}",
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPException from body reading; the error
                    # handlers render it in the API's JSON shape.
                    raise HTTPException(
                        413, f"request body is over the limit of {self.max_bytes} bytes"
                    )
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

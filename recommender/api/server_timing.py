"""The ``Server-Timing`` response header: how long the app and its engine took.

``Server-Timing: engine;dur=4.21, app;dur=5.03`` (milliseconds, W3C Server Timing): ``app``
from the request's arrival in the app to its response headers, ``engine`` the policy's
own work inside it (``recommender.timing`` spans), so what the service adds is readable
per request, under the conditions the request actually met: browser developer tools show
it, and ``benchmarks/bench_load.py`` compares it with the round trip. Off with
``SUMO_SERVER_TIMING=false`` for a deployment that would rather not say.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recommender import timing


def header(spans: dict[str, float], app_seconds: float) -> bytes:
    """The header's value: each span, then ``app``, in milliseconds."""
    parts = [f"{name};dur={seconds * 1e3:.3f}" for name, seconds in spans.items()]
    return ", ".join([*parts, f"app;dur={app_seconds * 1e3:.3f}"]).encode("latin-1")


def parse(value: str) -> dict[str, float]:
    """A ``Server-Timing`` value as seconds by name (what ``header`` wrote; metrics
    without a duration are left out)."""
    out: dict[str, float] = {}
    for part in value.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            out[name] = float(dur) / 1e3
    return out


class ServerTimingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        with timing.collect() as spans:

            async def send_with_timing(message: Message) -> None:
                if message["type"] == "http.response.start":
                    value = header(spans, time.perf_counter() - start)
                    message["headers"] = [*message.get("headers", []),
                                          (b"server-timing", value)]
                await send(message)

            await self.app(scope, receive, send_with_timing)

"""Where a request's time goes: named spans, collected per request.

The service times its parts (``span("engine")`` around the policy's work) into whatever
collector the current request set up (``collect``), and ``recommender.api.server_timing``
sends them back in the standard ``Server-Timing`` header. Outside a request, a span costs
one context-variable read. The collector lives in a context variable, so a repository call
sent to the thread pool (which runs in a copy of the context) still adds to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_spans: ContextVar[dict[str, float] | None] = ContextVar("sumo_spans", default=None)


@contextmanager
def collect() -> Iterator[dict[str, float]]:
    """Spans recorded until exit, in seconds by name (repeats of one name add up)."""
    spans: dict[str, float] = {}
    token = _spans.set(spans)
    try:
        yield spans
    finally:
        _spans.reset(token)


@contextmanager
def span(name: str) -> Iterator[None]:
    """Time the block into the current request's collector, if there is one."""
    spans = _spans.get()
    if spans is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        spans[name] = spans.get(name, 0.0) + time.perf_counter() - start

"""Prometheus metrics of one app: request counts and latency by route, feedback events by
outcome, recommendation latency by policy.

Each app has its own registry (tests build many apps in one process, and the default
global registry refuses a second metric of the same name).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Latency buckets around the service's targets (p50 15 ms, p99 60 ms).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.04, 0.06, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sumo_http_requests", "HTTP requests by route template and status",
            ["method", "route", "status"], registry=self.registry,
        )
        self.request_seconds = Histogram(
            "sumo_http_request_duration_seconds", "HTTP request latency by route template",
            ["method", "route"], buckets=_BUCKETS, registry=self.registry,
        )
        self.feedback_events = Counter(
            "sumo_feedback_events", "Feedback events by outcome (applied, duplicate, rejected)",
            ["outcome"], registry=self.registry,
        )
        self.recommendation_seconds = Histogram(
            "sumo_recommendation_duration_seconds",
            "Time to choose recommendations, including user state read and write",
            ["policy"], buckets=_BUCKETS, registry=self.registry,
        )
        # (method, route template, status) -> (counter, histogram): bounded by the routes.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """``metric.labels(*labels)``, kept (label values here are policies and outcomes:
        a handful)."""
        key = (metric._name, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count and time one request. The labelled children are kept: ``labels()`` takes a
        lock and validates the labels on every call (~5 us each, twice per request)."""
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.request_seconds.labels(method, route),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class MetricsMiddleware:
    """Counts and times every HTTP request, labelled by route template (``/v1/users/{user_id}``),
    never by raw path: user ids in labels would grow the series without bound."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(
                scope["method"], template, status, time.perf_counter() - start
            )

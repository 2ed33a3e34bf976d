"""The SUMO HTTP service: ``create_app(settings)`` builds a FastAPI app.

The lifespan opens the store and loads the text encoder once per process; everything per
user lives in the store (``users`` documents with compare-and-set), so any number of
replicas can serve the same users. Blocking store and model calls run in the thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from indexer.embedder.text import TextEmbedder
from indexer.errors import StoreUnavailable
from indexer.store import open_store
from indexer.store.base import Store
from recommender import regions
from recommender.api import errors, openapi
from recommender.api.context import AppContext
from recommender.api.limits import BodyLimitMiddleware
from recommender.api.maintenance import flush_periodically, refresh_regions_periodically
from recommender.api.metrics import Metrics, MetricsMiddleware
from recommender.api.ratelimit import RateLimiter
from recommender.api.routes import gaps, health, items, search, users, web
from recommender.api.server_timing import ServerTimingMiddleware
from recommender.api.services.images import ImageService
from recommender.api.services.items import ItemService
from recommender.api.services.text import TextService
from recommender.api.services.users import UserService
from recommender.engine import Engine
from recommender.gaps.service import GapService
from recommender.settings import Settings
from recommender.users import UserRepository

log = logging.getLogger(__name__)

# A store (a Qdrant cluster) may come up after the API replicas: wait this long at start.
STARTUP_WAIT_S = 30.0

DESCRIPTION = """\
Learns what one person wants to see from dwell time alone.

Ask `GET /v1/users/{id}/recommendations` what to show next, report how long each item was
looked at with `POST /v1/users/{id}/feedback`. Errors are always
`{"error": {"code", "message", "details"}}`.

Credentials (`Authorization: Bearer ...`): a per-user token opens its own user's routes and
the catalog; the service key (`SUMO_API_KEY`, for a trusted backend only) acts for any
user; the admin key opens everything. With none configured (loopback) all is open.
"""


def build_context(
    settings: Settings, store: Store, metrics: Metrics, embedder: TextEmbedder | None = None
) -> AppContext:
    """Everything the handlers use, over an open store (blocking: warms the store, loads
    or builds the region map, loads the model)."""
    store.warm()
    if store.spec() is None or store.count() == 0:
        log.warning("nothing is indexed in %r: the feed will be empty. Run `sumo index "
                    "PATH` (or `sumo import`) on this store first", store)
    regions.refresh(store)
    engine = Engine(store, default_policy=settings.policy, seed=settings.seed)
    engine.warm()
    text = TextService(settings, store, embedder)
    repo = UserRepository(store, engine)
    return AppContext(
        settings=settings, store=store, engine=engine,
        users=UserService(repo, metrics, max_limit=settings.max_limit,
                          max_events=settings.max_events_per_request,
                          inline=store.in_process),
        images=ImageService(store, capacity=settings.image_cache),
        items=ItemService(store, text, max_limit=settings.max_limit),
        text=text, metrics=metrics,
        gaps=GapService(store, encoder_of=lambda: _usable_encoder(text)),
    )


def _open_and_build(
    settings: Settings, store: Store | None, metrics: Metrics, embedder: TextEmbedder | None
) -> tuple[AppContext, bool]:
    """(context, whether we opened the store and so must close it)."""
    deadline = time.monotonic() + STARTUP_WAIT_S
    while True:
        opened = store if store is not None else open_store(settings)
        try:
            return build_context(settings, opened, metrics, embedder), store is None
        except StoreUnavailable as exc:
            if store is None:
                opened.close()
            if time.monotonic() > deadline:
                raise
            log.warning("store unavailable at start (%s); retrying", exc)
            time.sleep(1.0)


def _usable_encoder(text: TextService) -> TextEmbedder | None:
    text.refresh()  # cheap once a collection has been seen
    return text.embedder if text.usable else None


def _warm_gaps(context: AppContext) -> None:
    try:
        context.gaps.warm()
    except Exception:  # a background nicety: the report encodes them itself if this failed
        log.exception("gap labels not prepared at start")


def create_app(
    settings: Settings | None = None, *, store: Store | None = None,
    embedder: TextEmbedder | None = None,
) -> FastAPI:
    """The app. ``store`` (kept open by the caller) and ``embedder`` override what
    ``settings`` would open and load, for tests and embedding."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context, owned = await run_in_threadpool(
            _open_and_build, settings, store, metrics, embedder
        )
        app.state.sumo = context
        # Everything loaded so far (store client, models, modules) lives as long as the
        # process. Moving it out of the collector's reach keeps each full collection from
        # re-walking it: ~30 ms per walk measured here without torch, far more with it,
        # and every request in flight waits for it.
        gc.collect()
        gc.freeze()
        # The label vocabulary's embeddings, in the background: the first gap report
        # should not wait minutes for them (kept on disk after the first time).
        threading.Thread(target=_warm_gaps, args=(context,), name="sumo-gap-labels",
                         daemon=True).start()
        upkeep = [
            asyncio.create_task(job(context.store, every))
            for job, every in ((flush_periodically, settings.flush_seconds),
                               (refresh_regions_periodically, settings.regions_seconds))
            if every > 0
        ]
        try:
            yield
        finally:
            for task in upkeep:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            app.state.sumo = None
            if owned:
                await run_in_threadpool(context.store.close)

    # Swagger UI and ReDoc from assets in the package: /docs and /redoc work offline.
    app = FastAPIOffline(
        title="SUMO", version="1", description=DESCRIPTION, lifespan=lifespan,
        docs_url="/docs", redoc_url="/redoc", static_url="/docs-assets",
        # The app exports its own Prometheus metrics; skip per-request tracing work.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.limiter = RateLimiter.from_settings(settings)
    errors.install(app)
    openapi.install(app, settings)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.server_timing:
        app.add_middleware(ServerTimingMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts 413s too
    for module in (health, users, items, search, gaps, web):
        app.include_router(module.router)
    return app

"""Probes and metrics: liveness, readiness (store reachable, model loaded), Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from recommender.api.deps import ContextDep, MetricsDep
from recommender.api.openapi import errors_of
from recommender.api.responses import JSONBytes
from recommender.api.schemas import Health, ReadyCheck
from recommender.api.security import SecuredRoute, require_admin
from recommender.api.services.health import readiness

router = APIRouter(tags=["health"], route_class=SecuredRoute)


@router.get("/healthz", response_model=Health)
async def healthz() -> JSONBytes:
    """The process is alive (touches nothing else)."""
    return JSONBytes({"status": "ok"})


@router.get("/readyz", response_model=ReadyCheck, responses={503: {"model": ReadyCheck}})
async def readyz(context: ContextDep) -> JSONBytes:
    """Ready to serve: the store answers and the text encoder is loaded (where needed)."""
    check = await run_in_threadpool(readiness, context)
    return JSONBytes(check.model_dump(mode="json"), status_code=200 if check.ready else 503)


@router.get(
    "/metrics", response_class=Response, dependencies=[Depends(require_admin)],
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
               **errors_of(401, 403, 429)},
)
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus text format (admin key when keys are configured)."""
    return Response(metrics.render(), media_type=metrics.content_type)

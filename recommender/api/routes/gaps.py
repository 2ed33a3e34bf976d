"""Gap report endpoints: ``GET /v1/gaps`` (admin key) and the ``/gaps`` page.

Thin handlers over ``recommender.gaps.service.GapService``, one per app process (created
on first use), so the JSON, the page and ``sumo gaps`` show the same regions.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from recommender.api.context import AppContext
from recommender.api.deps import ContextDep
from recommender.api.openapi import errors_of
from recommender.api.responses import JSONBytes
from recommender.api.schemas import GapReportResponse
from recommender.api.security import SecuredRoute, require_admin
from recommender.gaps.render import PAGE
from recommender.gaps.service import GapService

router = APIRouter(tags=["gaps"], route_class=SecuredRoute)


def _service(request: Request, context: AppContext) -> GapService:
    service: GapService | None = getattr(request.app.state, "gaps", None)
    if service is None or service.store is not context.store:
        encoder = context.text.embedder if context.text.usable else None
        service = GapService(context.store, encoder)
        request.app.state.gaps = service
    return service


@router.get(
    "/v1/gaps", response_model=GapReportResponse, dependencies=[Depends(require_admin)],
    responses=errors_of(401, 403, 422, 429, 503),
)
async def gaps(
    request: Request, context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="regions to return")] = 10,
    refresh: Annotated[bool, Query(description="recompute instead of the cached report")] = False,
    map: Annotated[bool, Query(description="add a 2-D PCA map of supply and demand")] = False,
) -> JSONBytes:
    """Regions where users' learned targets cluster far from any item, best first."""
    service = _service(request, context)
    body: dict[str, Any] = await run_in_threadpool(
        service.as_dict, limit, refresh=refresh, with_map=map)
    if not context.text.usable and context.text.reason:
        body["labels_note"] = f"no labels: {context.text.reason}"  # the precise reason
    return JSONBytes(body)


@router.get("/gaps", include_in_schema=False)
def gaps_page() -> FileResponse:
    """The report page (public shell: its data comes from /v1/gaps with the admin key)."""
    return FileResponse(PAGE, headers={"Cache-Control": "no-cache"})

"""Gap report endpoints: ``GET /v1/gaps`` (admin key) and the ``/gaps`` page.

Thin handlers over the process's ``GapService`` (built with the app context), so the JSON,
the page and ``sumo gaps`` show the same regions.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from recommender.api.deps import ContextDep
from recommender.api.openapi import errors_of
from recommender.api.responses import JSONBytes
from recommender.api.schemas import GapReportResponse
from recommender.api.security import SecuredRoute, require_admin
from recommender.gaps.render import PAGE

router = APIRouter(tags=["gaps"], route_class=SecuredRoute)


@router.get(
    "/v1/gaps", response_model=GapReportResponse, dependencies=[Depends(require_admin)],
    responses=errors_of(401, 403, 422, 429, 503),
)
async def gaps(
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="regions to return")] = 10,
    refresh: Annotated[bool, Query(description="recompute instead of the cached report")] = False,
    map: Annotated[bool, Query(description="add a 2-D PCA map of supply and demand")] = False,
) -> JSONBytes:
    """Regions where users' learned targets cluster far from any item, best first."""
    body: dict[str, Any] = await run_in_threadpool(
        context.gaps.as_dict, limit, refresh=refresh, with_map=map)
    if not context.text.usable and context.text.reason:
        body["labels_note"] = f"no labels: {context.text.reason}"  # the precise reason
    return JSONBytes(body)


@router.get("/gaps", include_in_schema=False)
def gaps_page() -> FileResponse:
    """The report page (public shell: its data comes from /v1/gaps with the admin key)."""
    return FileResponse(PAGE, headers={"Cache-Control": "no-cache"})

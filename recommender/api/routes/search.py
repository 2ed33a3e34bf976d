"""Text-to-image search through the CLIP text encoder."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from recommender.api.deps import CatalogAuth, ItemsDep
from recommender.api.openapi import errors_of
from recommender.api.responses import JSONBytes, scored_item
from recommender.api.schemas import SearchResults
from recommender.api.security import SecuredRoute, check_acting_for, require_catalog

router = APIRouter(
    prefix="/v1", tags=["search"], dependencies=[Depends(require_catalog)],
    route_class=SecuredRoute, responses=errors_of(401, 403, 409, 422, 429, 503),
)


@router.get("/search", response_model=SearchResults)
async def search(
    request: Request, items: ItemsDep, caller: CatalogAuth,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="what to look for")],
    limit: Annotated[int, Query(ge=1, description="items wanted (capped by SUMO_MAX_LIMIT)")] = 10,
    user_id: Annotated[str | None, Query(
        min_length=1, max_length=256,
        description="who searched: the query counts once per user as demand")] = None,
) -> JSONBytes:
    """Items matching a description. The query is kept as demand for the gap report."""
    check_acting_for(caller, user_id)
    hits = await items.search(q, limit, user_id)
    root = request.scope.get("root_path", "")
    return JSONBytes({"items": [scored_item(h, root) for h in hits], "query": q})

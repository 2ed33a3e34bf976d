"""Text-to-image search through the CLIP text encoder."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from recommender.api.deps import CatalogDep
from recommender.api.responses import JSONBytes, scored_item
from recommender.api.schemas import ErrorResponse, SearchResults
from recommender.api.security import require_user

router = APIRouter(
    prefix="/v1", tags=["search"], dependencies=[Depends(require_user)],
    responses={409: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)


@router.get("/search", response_model=SearchResults)
async def search(
    request: Request, catalog: CatalogDep,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="what to look for")],
    limit: Annotated[int, Query(ge=1)] = 10,
    user_id: Annotated[str | None, Query(
        min_length=1, max_length=256,
        description="who searched: the query counts once per user as demand")] = None,
) -> JSONBytes:
    """Items matching a description. The query is kept as demand for the gap report."""
    hits = await catalog.search(q, limit, user_id)
    root = request.scope.get("root_path", "")
    return JSONBytes({"items": [scored_item(h, root) for h in hits], "query": q})

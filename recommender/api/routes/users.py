"""Per-user endpoints: recommendations, feedback, warm start, inspect and forget."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from recommender.api.deps import TextDep, UsersDep
from recommender.api.openapi import errors_of
from recommender.api.responses import JSONBytes, scored_item
from recommender.api.schemas import (
    USER_ID_PATTERN,
    Deleted,
    FeedbackRequest,
    FeedbackResult,
    Recommendations,
    SeedRequest,
    UserInfo,
)
from recommender.api.security import SecuredRoute, require_owner

router = APIRouter(
    prefix="/v1/users", tags=["users"], dependencies=[Depends(require_owner)],
    route_class=SecuredRoute, responses=errors_of(401, 403, 409, 422, 429, 503),
)
UserId = Annotated[str, Path(pattern=USER_ID_PATTERN, description="any stable id of the person")]


@router.get("/{user_id}/recommendations", response_model=Recommendations)
async def recommendations(
    request: Request, user_id: UserId, users: UsersDep,
    limit: Annotated[int, Query(ge=1, description="items wanted (capped by SUMO_MAX_LIMIT); "
                                "5, the batch SUMO is measured with, learns best")] = 5,
    policy: Annotated[
        str | None, Query(min_length=1, description="policy to use (default: the deployment's)")
    ] = None,
) -> JSONBytes:
    """The next items to show; never one this user was shown or gave feedback on."""
    hits, used = await users.recommend(user_id, limit, policy)
    root = request.scope.get("root_path", "")
    return JSONBytes({"items": [scored_item(h, root) for h in hits], "policy": used})


@router.post("/{user_id}/feedback", response_model=FeedbackResult)
async def feedback(user_id: UserId, body: FeedbackRequest, users: UsersDep) -> JSONBytes:
    """Dwell times of viewed items; all-or-nothing per request, idempotent per event_id."""
    outcome = await users.feedback(user_id, body.events)
    return JSONBytes(asdict(outcome))


@router.post("/{user_id}/seed", response_model=UserInfo)
async def seed(user_id: UserId, body: SeedRequest, users: UsersDep, text: TextDep) -> JSONBytes:
    """Warm start from a description and/or liked items."""
    summary = await users.seed_from(user_id, body.text, body.item_ids, text)
    return JSONBytes(summary.to_dict())


@router.get("/{user_id}", response_model=UserInfo, responses=errors_of(404))
async def get_user(user_id: UserId, users: UsersDep) -> JSONBytes:
    return JSONBytes((await users.summary(user_id)).to_dict())


@router.delete("/{user_id}", response_model=Deleted)
async def delete_user(user_id: UserId, users: UsersDep) -> JSONBytes:
    """Forget everything about this user."""
    return JSONBytes({"user_id": user_id, "deleted": await users.delete(user_id)})

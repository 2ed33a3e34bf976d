"""Corpus items: metadata and resized images."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from recommender.api.deps import ImagesDep, ItemsDep
from recommender.api.openapi import errors_of
from recommender.api.responses import JSONBytes, image_url
from recommender.api.schemas import ImageFormat, ItemInfo
from recommender.api.security import SecuredRoute, require_catalog

router = APIRouter(
    prefix="/v1/items", tags=["items"], dependencies=[Depends(require_catalog)],
    route_class=SecuredRoute, responses=errors_of(401, 403, 404, 422, 429, 503),
)


@router.get("/{item_id}", response_model=ItemInfo)
async def get_item(request: Request, item_id: str, items: ItemsDep) -> JSONBytes:
    info = await items.item(item_id)
    info["image_url"] = image_url(item_id, request.scope.get("root_path", ""))
    return JSONBytes(info)


@router.get(
    "/{item_id}/image", response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/webp": {}, "image/png": {}}},
               304: {"description": "not modified (If-None-Match matched the ETag)"}},
)
async def get_image(
    item_id: str, images: ImagesDep,
    size: Annotated[int, Query(ge=16, le=4096, description="longest side, snapped up")] = 1024,
    format: Annotated[ImageFormat | None, Query(description="default: WebP if accepted")] = None,
    accept: Annotated[str, Header()] = "",
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The item's image, resized (never enlarged), from the indexed folders only.
    Transparency is kept: WebP carries it, and a transparent image asked for as JPEG
    comes as PNG."""
    fmt = format or (ImageFormat.WEBP if "image/webp" in accept else ImageFormat.JPEG)
    image = await run_in_threadpool(images.render, item_id, size, fmt)
    headers = {"ETag": image.etag, "Cache-Control": "private, max-age=86400", "Vary": "Accept"}
    if if_none_match == image.etag:
        return Response(status_code=304, headers=headers)
    return Response(image.data, media_type=image.media_type, headers=headers)

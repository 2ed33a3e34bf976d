"""The feed page at ``/`` and its static assets: plain files, no build step.

The page is public (it holds no data); the API calls it makes carry the key.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
# An allow-list: a request can never name a file outside it (the folder also holds the
# gap report's template, which is rendered elsewhere, not served raw).
ASSETS = {name: WEB_DIR / name for name in ("index.html", "feed.js", "feed.css")}
# Revalidate each load (cheap, ETag) so a redeploy never leaves a stale page in a phone.
_NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@router.get("/")
def feed_page() -> FileResponse:
    return FileResponse(ASSETS["index.html"], headers=_NO_CACHE)


@router.get("/web/{name}")
def asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no asset {name!r}")
    return FileResponse(path, headers=_NO_CACHE)

"""Fast JSON responses for the hot paths, and the item shape shared by several routes.

Hot handlers return ``JSONBytes`` built from plain dicts in the documented schema shapes:
orjson encodes them directly, skipping a second validation pass through pydantic models
(the models in ``schemas`` still document them in OpenAPI).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from indexer.store.base import Hit


class JSONBytes(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def image_url(item_id: str, root_path: str = "") -> str:
    """Relative URL of an item's image (behind a proxy, ``root_path`` keeps it valid)."""
    return f"{root_path}/v1/items/{quote(item_id, safe='')}/image"


def scored_item(hit: Hit, root_path: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": hit.id, "score": float(hit.score), "image_url": image_url(hit.id, root_path),
    }
    if hit.payload:
        for key in ("width", "height"):
            if key in hit.payload:
                item[key] = hit.payload[key]
    return item

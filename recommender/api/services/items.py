"""Read-only views of the corpus: one item, and text-to-image search."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from indexer.errors import NotFound
from indexer.store.base import Hit, Store
from recommender import searches
from recommender.api.errors import InvalidRequest
from recommender.api.services.text import TextService

# Payload keys that reveal the server's file system: never sent to clients.
PRIVATE_KEYS = frozenset({"paths", "files", "path"})


class ItemService:
    def __init__(self, store: Store, text: TextService, *, max_limit: int) -> None:
        self.store = store
        self.text = text
        self.max_limit = max_limit

    def item_sync(self, item_id: str) -> dict[str, Any]:
        items = self.store.retrieve([item_id])
        if not items:
            raise NotFound(f"no item {item_id!r}")
        payload = items[0].payload
        return {
            "id": item_id,
            "width": payload.get("width"),
            "height": payload.get("height"),
            "metadata": {k: v for k, v in payload.items() if k not in PRIVATE_KEYS},
        }

    async def item(self, item_id: str) -> dict[str, Any]:
        return await run_in_threadpool(self.item_sync, item_id)

    def search_sync(self, query: str, limit: int, user_id: str | None = None) -> list[Hit]:
        if limit > self.max_limit:
            raise InvalidRequest(f"limit {limit} is over the maximum of {self.max_limit}")
        vector = self.text.encode_sync(query)
        hits = self.store.search(vector, limit, with_payload=True)
        searches.record(self.store, query, vector, user_id)  # demand for the gap report
        return hits

    async def search(self, query: str, limit: int, user_id: str | None = None) -> list[Hit]:
        return await run_in_threadpool(self.search_sync, query, limit, user_id)

"""How a user is stored: one document per user in namespace ``users``, key = user id.

Body: ``{"record": "<JSON text>"}``, the text being
``{"state": UserState.to_dict(), "event_ids": "<digest><digest>..."}`` (``event_ids``: the
fixed-size digests of the most recent applied feedback event ids, for idempotency, run
together in one string; an older version stored them as a JSON list, still read).

One string rather than nested JSON because Qdrant (Edge especially) converts and stores
payload arrays element by element: a user's seen list as a payload array made every write
about 5x slower than the same data as one string.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from indexer.store.base import Document, Store
from recommender.errors import BadState
from recommender.state import UserState

NAMESPACE = "users"
RECORD_KEY = "record"


def pack(state: UserState, event_ids: list[str]) -> dict[str, Any]:
    record = {"state": state.to_dict(), "event_ids": "".join(event_ids)}
    return {RECORD_KEY: orjson.dumps(record).decode()}


def unpack_event_ids(packed: Any, size: int) -> list[str]:
    """The digests ``pack`` ran together (``size`` characters each), or an older
    version's list of them."""
    if isinstance(packed, str) and len(packed) % size == 0:
        return [packed[i:i + size] for i in range(0, len(packed), size)]
    if isinstance(packed, list) and all(isinstance(x, str) for x in packed):
        return packed
    raise BadState("event ids are neither a digest string nor a list of digests")


def unpack(body: Mapping[str, Any]) -> dict[str, Any]:
    """``{"state": ..., "event_ids": [...]}`` from a document body. A bare
    ``UserState.to_dict()`` body (written by tools, not the service) is accepted too."""
    packed = body.get(RECORD_KEY)
    if isinstance(packed, str):
        try:
            record: dict[str, Any] = orjson.loads(packed)
        except orjson.JSONDecodeError as exc:
            raise BadState(f"user record is not JSON: {exc}") from exc
        return record
    if "format" in body and "user_id" in body:
        return {"state": dict(body), "event_ids": []}
    raise BadState("a users document holds no user record")


def state_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``UserState.to_dict()`` inside a users document body."""
    state: dict[str, Any] = unpack(body)["state"]
    return state


def state_from_document(doc: Document) -> UserState:
    return UserState.from_dict(state_body(doc.body))


def iter_states(store: Store) -> Iterator[UserState]:
    """Every stored user's state."""
    for doc in store.scroll_documents(NAMESPACE):
        yield state_from_document(doc)

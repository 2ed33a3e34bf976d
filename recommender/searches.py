"""Text searches as demand: what people typed, kept for the gap report.

Every text search (``/v1/search``, the feed's "show me more of ..." box through
``/seed``) is one document in the store's ``searches`` namespace, keyed by who asked and
what (a user repeating a query counts once; anonymous searches are keyed by the text
alone). The body holds the query, its text embedding (float16) and when it was last asked.
Whether a search found a good result is decided by the gap report, against the
collection's own calibration, not here: the collection may have grown since.

Recording is best effort: a search must never fail because its log could not be written.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.errors import SumoError
from indexer.store.base import Document, Store, Vector
from recommender.state import decode_f16, encode_f16, unit

NAMESPACE = "searches"
MAX_QUERY = 200  # characters kept of a query
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Search:
    query: str
    vector: Vector  # unit text embedding
    user_id: str | None
    last: float  # unix seconds
    count: int


def key_of(query: str, user_id: str | None) -> str:
    who = user_id if user_id is not None else "*"
    return hashlib.sha1(f"{who}\n{query.strip().lower()}".encode()).hexdigest()


def record(store: Store, query: str, vector: Vector, user_id: str | None = None,
           now: float | None = None) -> None:
    """Remember one search (best effort: a failure is logged, never raised)."""
    def counted(old: Document | None) -> tuple[None, dict[str, Any]]:
        count = int(old.body.get("count", 0)) + 1 if old is not None else 1
        return None, {"q": query.strip()[:MAX_QUERY], "v": encode_f16(unit(vector)),
                      "user": user_id, "last": float(now if now is not None else time.time()),
                      "count": count}

    try:
        # One attempt: a lost race means someone else just recorded the same search.
        store.update_document(NAMESPACE, key_of(query, user_id), counted, attempts=1)
    except (SumoError, OSError, ValueError) as exc:  # a conflict too: someone else recorded it
        log.warning("search not recorded: %s", exc)


def iter_searches(store: Store) -> Iterator[Search]:
    for doc in store.scroll_documents(NAMESPACE):
        b = doc.body
        try:
            v = decode_f16(str(b["v"]))
            found = Search(query=str(b.get("q", "")), vector=unit(v),
                           user_id=None if b.get("user") is None else str(b["user"]),
                           last=float(b.get("last", 0.0)), count=int(b.get("count", 1)))
        except (KeyError, TypeError, ValueError):
            continue  # unreadable: written by something else
        if np.all(np.isfinite(found.vector)) and float(np.linalg.norm(found.vector)) > 0:
            yield found

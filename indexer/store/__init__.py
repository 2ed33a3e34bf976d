"""Vector store: one interface (``base.Store``), two backends.

``open_store(settings)`` picks the Qdrant server backend when ``qdrant_url`` is set and the
embedded Qdrant Edge folder otherwise.
"""

from indexer.settings import CorpusSettings
from indexer.store.base import (
    CollectionSpec,
    Document,
    FeedbackPair,
    FeedbackParams,
    Hit,
    Item,
    RecommendStrategy,
    Store,
    point_id,
)

__all__ = [
    "CollectionSpec", "Document", "FeedbackPair", "FeedbackParams", "Hit", "Item",
    "RecommendStrategy", "Store", "open_store", "point_id",
]


def open_store(settings: CorpusSettings) -> Store:
    if settings.qdrant_url:
        from indexer.store.server import ServerStore

        return ServerStore(
            settings.qdrant_url, api_key=settings.qdrant_api_key, collection=settings.collection
        )
    from indexer.store.edge import EdgeStore

    return EdgeStore(settings.data, collection=settings.collection)

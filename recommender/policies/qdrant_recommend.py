"""``qdrant-recommend`` / ``qdrant-recommend-best``: Qdrant's recommend query.

Positives are the user's recently liked views and negatives the recently skipped ones (by
robust dwell score); Qdrant does the rest (``average_vector`` or ``best_score``). Only item
ids are kept in the user state; their vectors are fetched from the store when asked, as a
Qdrant application would pass point ids.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from indexer.store.base import Hit, RecommendStrategy, Vector
from recommender.policies.base import Policy, Scored
from recommender.state import UserState, unit

LIKED_Z = 0.5
SKIPPED_Z = 0.0
KEEP = 10  # most recent positives and negatives sent with each query


class QdrantRecommendPolicy(Policy):
    name = "qdrant-recommend"
    description = "Qdrant recommend query (average_vector) over liked / skipped views"
    strategy = RecommendStrategy.AVERAGE_VECTOR

    def update(self, state: UserState, batch: Sequence[Scored]) -> None:
        pos: list[list[object]] = list(state.data.get("pos", []))
        neg: list[list[object]] = list(state.data.get("neg", []))
        for o in batch:
            if o.z >= LIKED_Z:
                pos.append([o.item_id, round(o.z, 3)])
            elif o.z <= SKIPPED_Z:
                neg.append([o.item_id, round(o.z, 3)])
        state.data["pos"] = pos[-KEEP:]
        state.data["neg"] = neg[-KEEP:]

    def _examples(self, kept: list[list[object]]) -> list[tuple[float, Vector]]:
        """(dwell score, vector) of kept views still in the store, oldest first."""
        if not kept:
            return []
        items = self.store.retrieve([str(k[0]) for k in kept], with_vectors=True)
        vectors = {it.id: it.vector for it in items if it.vector is not None}
        return [(float(str(k[1])), vectors[str(k[0])]) for k in kept if str(k[0]) in vectors]

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        pos = [v for _, v in self._examples(state.data.get("pos", []))]
        if not pos:
            return self.random_items(limit, exclude)
        neg = [v for _, v in self._examples(state.data.get("neg", []))]
        state.target = unit(np.mean(np.stack(pos), axis=0))
        return self.store.recommend(pos, neg, limit, strategy=self.strategy, exclude=exclude)


class QdrantRecommendBestPolicy(QdrantRecommendPolicy):
    name = "qdrant-recommend-best"
    description = "Qdrant recommend query (best_score) over liked / skipped views"
    strategy = RecommendStrategy.BEST_SCORE

"""``qdrant-feedback``: Qdrant's relevance-feedback query (Qdrant 1.17, naive strategy).

score(x) = a·sim(target, x) + Σ c·confidence^b·(sim(pos, x) − sim(neg, x)) over (liked,
skipped) pairs, where the target is the mean of recent liked views and confidence is the
pair's dwell-score gap scaled to [0, 1].
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from indexer.store.base import FeedbackPair, FeedbackParams, Hit
from recommender.policies.qdrant_recommend import QdrantRecommendPolicy
from recommender.state import UserState, unit

GAP_RANGE = 4.0  # a dwell-score gap this large is full confidence
PARAMS = FeedbackParams(a=1.0, b=1.0, c=1.0)


class QdrantFeedbackPolicy(QdrantRecommendPolicy):
    name = "qdrant-feedback"
    description = "Qdrant relevance-feedback query over (liked, skipped) pairs"

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        pos = self._examples(state.data.get("pos", []))
        if not pos:
            return self.random_items(limit, exclude)
        neg = self._examples(state.data.get("neg", []))
        target = unit(np.mean(np.stack([v for _, v in pos]), axis=0))
        state.target = target
        # Pair the most recent liked with the most recent skipped views, newest first.
        pairs = [
            FeedbackPair(positive=vp, negative=vn,
                         confidence=float(np.clip((zp - zn) / GAP_RANGE, 0.0, 1.0)))
            for (zp, vp), (zn, vn) in zip(pos[::-1], neg[::-1], strict=False)
        ]
        return self.store.relevance_feedback(target, pairs, limit, params=PARAMS,
                                             exclude=exclude)

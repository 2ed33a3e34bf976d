"""``rocchio``: the classic relevance-feedback query, q = β·mean(liked) − γ·mean(disliked).

Liked and disliked come from the user's robust dwell score. Nearest unseen items to q are
shown; before anything is liked, random items. No forgetting and no deliberate
exploration: that is the textbook method, kept as the baseline it is.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from indexer.store.base import Hit
from recommender.policies.base import Policy, Scored
from recommender.state import UserState, decode_f32, encode_f32, unit

LIKED_Z = 0.5  # robust dwell score above which a view counts as liked
BETA = 1.0
GAMMA = 0.25


class RocchioPolicy(Policy):
    name = "rocchio"
    description = "Rocchio query from liked and disliked views, nearest unseen items"

    def _sums(self, state: UserState, dim: int) -> tuple[np.ndarray, float, np.ndarray, float]:
        d = state.data
        pos = decode_f32(d["pos"]) if "pos" in d else np.zeros(dim, np.float32)
        neg = decode_f32(d["neg"]) if "neg" in d else np.zeros(dim, np.float32)
        return pos, float(d.get("wp", 0.0)), neg, float(d.get("wn", 0.0))

    def update(self, state: UserState, batch: Sequence[Scored]) -> None:
        if not batch:
            return
        pos, wp, neg, wn = self._sums(state, batch[0].vector.shape[0])
        for o in batch:
            if o.z > LIKED_Z:
                pos += o.z * o.vector
                wp += o.z
            elif o.z <= 0:
                neg += o.vector
                wn += 1.0
        state.data.update(pos=encode_f32(pos), wp=wp, neg=encode_f32(neg), wn=wn)
        if wp > 0:
            q = BETA * pos / wp - (GAMMA * neg / wn if wn > 0 else 0.0)
            state.target = unit(q)

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        if state.target is None or float(state.data.get("wp", 0.0)) <= 0:
            return self.random_items(limit, exclude)
        return self.store.search(state.target, limit, exclude=exclude)

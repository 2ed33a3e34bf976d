"""``oracle`` (simulation only): knows the simulated user's hidden expected dwell.

It shows, at every step, the unseen items with the highest expected dwell under the user's
current taste: the ceiling that taste capture is measured against.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
from numpy.typing import NDArray

from indexer.store.base import Hit, Store
from recommender.policies.base import Policy, Scored
from recommender.state import UserState

Truth = Callable[[int], NDArray[np.float64]]  # impression index -> expected dwell per item


class OraclePolicy(Policy):
    name = "oracle"
    description = "simulation only: knows the hidden taste"
    sim_only = True

    def __init__(self, store: Store, rng: np.random.Generator, *, truth: Truth,
                 ids: Sequence[str]) -> None:
        super().__init__(store, rng)
        self.truth = truth
        self.ids = list(ids)
        self.index = {k: i for i, k in enumerate(self.ids)}

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        scores = self.truth(state.events).copy()
        scores[[self.index[e] for e in exclude if e in self.index]] = -np.inf
        k = min(limit, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [Hit(id=self.ids[i], score=float(scores[i])) for i in top if np.isfinite(scores[i])]

    def update(self, state: UserState, batch: Sequence[Scored]) -> None:
        return None

"""``random``: uniformly random unseen items. The floor every policy must beat."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from indexer.store.base import Hit
from recommender.policies.base import Policy, Scored
from recommender.state import UserState


class RandomPolicy(Policy):
    name = "random"
    description = "uniformly random unseen items (Qdrant's random sample query)"

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        return self.random_items(limit, exclude)

    def update(self, state: UserState, batch: Sequence[Scored]) -> None:
        return None

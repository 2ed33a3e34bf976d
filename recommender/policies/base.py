"""The one interface every recommendation policy implements.

A policy is stateless between calls: all per-user memory lives in ``UserState`` (shared
fields plus ``state.data``, which belongs to the user's current policy), so any API replica
can serve any user. The engine owns validation, dwell scoring and the no-repeat rule;
policies only decide what to show and how to learn from scored views.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from indexer.store.base import Hit, Store, Vector
from recommender.state import UserState, unit


@dataclass(frozen=True)
class Scored:
    """One view after dwell scoring: ``z`` is the user's robust dwell score (about ±3)."""

    item_id: str
    vector: Vector  # unit norm
    z: float
    dwell_ms: float


class Policy(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    sim_only: ClassVar[bool] = False  # needs the simulator's hidden truth

    def __init__(self, store: Store, rng: np.random.Generator) -> None:
        self.store = store
        self.rng = rng

    @abstractmethod
    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        """Up to ``limit`` items, none in ``exclude``, best first."""

    @abstractmethod
    def update(self, state: UserState, batch: Sequence[Scored]) -> None:
        """Learn from scored views (mutates ``state``)."""

    def warm(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Prepare what this process keeps for the policy, before the first request."""

    def seed(self, state: UserState, vectors: Sequence[Vector]) -> None:
        """Warm start from text embeddings or liked items: the default aims at their mean."""
        if vectors:
            state.target = unit(np.mean(np.stack([unit(v) for v in vectors]), axis=0))

    # --- helpers shared by policies ------------------------------------------------------
    def _seed_int(self) -> int:
        return int(self.rng.integers(0, 2**31 - 1))

    def random_items(self, limit: int, exclude: Collection[str]) -> list[Hit]:
        return self.store.sample(limit, exclude=exclude, seed=self._seed_int()) if limit > 0 else []

    def spread_items(
        self, limit: int, exclude: Collection[str], avoid: Sequence[Vector] = (), pool: int = 8
    ) -> list[tuple[Hit, Vector]]:
        """Random items that are far from each other and from ``avoid`` (farthest-point
        selection over a random pool): covers the corpus faster than plain sampling, which
        keeps hitting the biggest clusters."""
        if limit <= 0:
            return []
        hits = self.random_items(limit * pool, exclude)
        if not hits:
            return []
        items = self.store.retrieve([h.id for h in hits], with_vectors=True)
        items = [it for it in items if it.vector is not None]
        if not items:
            return []
        cand = np.stack([np.asarray(it.vector, dtype=np.float32) for it in items])
        # Closest similarity of each candidate to anything already chosen or avoided.
        closest = np.full(len(items), -1.0, dtype=np.float32)
        if len(avoid):
            closest = (cand @ np.stack(list(avoid)).T).max(axis=1)
        chosen: list[int] = []
        for _ in range(min(limit, len(items))):
            score = closest.copy()
            score[chosen] = np.inf
            k = int(np.argmin(score))
            chosen.append(k)
            closest = np.maximum(closest, cand @ cand[k])
        return [(Hit(id=items[k].id, score=0.0), cand[k]) for k in chosen]

    def nearest_distinct(
        self, queries: Sequence[Vector], exclude: Collection[str], taken: set[str]
    ) -> list[Hit]:
        """For each query the nearest item not excluded nor already taken by an earlier one."""
        if not queries:
            return []
        out: list[Hit] = []
        results = self.store.search_many(list(queries), len(queries) + len(taken) + 1,
                                         exclude=exclude)
        for hits in results:
            for h in hits:
                if h.id not in taken:
                    taken.add(h.id)
                    out.append(h)
                    break
        return out


def slerp(a: Vector, b: Vector, t: float) -> Vector:
    """The point a fraction ``t`` of the way from unit ``a`` to unit ``b`` on the sphere."""
    cos = float(np.clip(np.dot(a, b), -1.0, 1.0))
    omega = float(np.arccos(cos))
    if omega < 1e-6:
        return unit(a)
    s = np.sin(omega)
    return unit((np.sin((1 - t) * omega) / s) * a + (np.sin(t * omega) / s) * b)

"""The recommender core's one entry point: policies over a store, user state in and out.

The engine owns what must hold whatever the policy: feedback is validated as a batch
(all or nothing), dwell is scored per user, and nothing is ever shown twice. Policies only
choose and learn. The engine keeps no per-user memory: the caller loads a ``UserState``,
calls ``recommend``/``observe``, and stores it back (the HTTP service does so with
compare-and-set).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.store.base import Hit, Store, Vector
from recommender.dwell import validate_dwell
from recommender.errors import InvalidFeedback, UnknownPolicy
from recommender.exclusion import Exclusion, SeenFilteringStore
from recommender.policies import Policy, Scored, make_policy, policy_names
from recommender.state import UserState, unit

__all__ = ["Engine", "Observation", "validate_dwell"]

ENGAGEMENT_CAP_S = 600.0  # one view adds at most ten minutes of engagement


@dataclass(frozen=True)
class Observation:
    item_id: str
    vector: Vector  # the item's vector (the service fetches it from the store)
    dwell_ms: float
    ts: float | None = None


class Engine:
    def __init__(
        self, store: Store, default_policy: str = "sumo", seed: int | None = None, *,
        extra_policies: Mapping[str, Policy] | None = None,
    ) -> None:
        self.store = store
        self.rng = np.random.default_rng(seed)
        # Policies query through a wrapper that also excludes the older seen items known
        # only by fingerprint (``recommender.exclusion``).
        self._filtered = SeenFilteringStore(store)
        self._policies: dict[str, Policy] = {
            name: make_policy(name, self._filtered, self.rng) for name in policy_names()
        }
        self._policies.update(extra_policies or {})
        if default_policy not in self._policies:
            raise UnknownPolicy(default_policy, self.policy_names)
        self.default_policy = default_policy

    def warm(self) -> None:
        """Prepare what the policies keep per process (the ``sumo`` centre lists: seconds
        on a large collection), so that no request waits for it."""
        for policy in self._policies.values():
            policy.warm()

    @property
    def policy_names(self) -> list[str]:
        return list(self._policies)

    def policy(self, name: str) -> Policy:
        try:
            return self._policies[name]
        except KeyError:
            raise UnknownPolicy(name, self.policy_names) from None

    def new_state(self, user_id: str) -> UserState:
        return UserState(user_id=user_id, policy=self.default_policy)

    def _switch(self, state: UserState, name: str) -> Policy:
        policy = self.policy(name)
        if name != state.policy:
            # Policy-specific memory does not translate; shared fields (target, dwell
            # statistics, seen) carry over.
            state.policy = name
            state.data = {}
        return policy

    def recommend(self, state: UserState, limit: int, policy: str | None = None) -> list[Hit]:
        """Up to ``limit`` unseen items (fewer only when the corpus runs out); they become
        seen."""
        p = self._switch(state, policy or state.policy)
        limit = max(0, int(limit))
        if limit == 0:
            return []
        seen = Exclusion(state.seen)
        out: list[Hit] = []
        taken: set[str] = set()
        for h in p.recommend(state, limit, seen):
            # Never trust a policy (or a store) with the no-repeat promise.
            if h.id not in seen and h.id not in taken and len(out) < limit:
                out.append(h)
                taken.add(h.id)
        if len(out) < limit:  # a policy may come up short (tiny corpus, strict filters)
            for h in self._filtered.sample(limit - len(out), exclude=seen | taken,
                                           seed=int(self.rng.integers(0, 2**31 - 1))):
                if h.id not in seen and h.id not in taken:
                    out.append(h)
                    taken.add(h.id)
        state.mark_seen([h.id for h in out])
        return out

    def observe(self, state: UserState, events: Sequence[Observation]) -> None:
        """Apply a batch of dwell feedback, or raise ``InvalidFeedback`` and apply none."""
        problems: list[dict[str, Any]] = []
        dim = None if state.target is None else int(state.target.shape[0])
        for i, e in enumerate(events):
            reason = _check(e)
            if reason is None:
                d = int(np.asarray(e.vector).shape[0])
                if dim is not None and d != dim:
                    reason = f"vector has dimension {d}, expected {dim}"
                dim = dim or d
            if reason is not None:
                problems.append({"index": i, "item_id": getattr(e, "item_id", None),
                                 "error": reason})
        if problems:
            raise InvalidFeedback(problems)
        if not events:
            return
        p = self._switch(state, state.policy)
        scored = [Scored(item_id=e.item_id, vector=unit(e.vector), z=state.dwell.add(e.dwell_ms),
                         dwell_ms=float(e.dwell_ms)) for e in events]
        state.events += len(events)
        state.engagement += sum(min(float(e.dwell_ms) / 1000.0, ENGAGEMENT_CAP_S) for e in events)
        stamps = [float(e.ts) for e in events if e.ts is not None]
        state.last_active = max([state.last_active, *stamps]) if stamps else time.time()
        state.mark_seen([e.item_id for e in events])
        p.update(state, scored)

    def seed(self, state: UserState, vectors: Sequence[Vector]) -> None:
        """Warm start from text embeddings or liked items' vectors."""
        good = [unit(v) for v in vectors if _vector_problem(v) is None]
        if good:
            self.policy(state.policy).seed(state, good)


def _vector_problem(v: object) -> str | None:
    try:
        a = np.asarray(v, dtype=np.float32)
    except (TypeError, ValueError):
        return "vector is not numeric"
    if a.ndim != 1 or a.size == 0:
        return "vector must be one-dimensional"
    if not np.all(np.isfinite(a)):
        return "vector must be finite"
    if float(np.linalg.norm(a)) == 0.0:
        return "vector must not be zero"
    return None


def _check(e: Observation) -> str | None:
    if not isinstance(e.item_id, str) or not e.item_id:
        return "item_id must be a non-empty string"
    reason = validate_dwell(e.dwell_ms)
    if reason is not None:
        return reason
    if e.ts is not None and not (isinstance(e.ts, int | float) and math.isfinite(e.ts)):
        return "ts must be a finite unix time"
    return _vector_problem(e.vector)

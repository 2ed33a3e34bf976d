"""Simulated users meet policies: the taste-capture benchmark's engine room.

Every (policy, user) run goes through the real ``Engine`` over a real store: the policy
recommends a batch, the simulated user looks at each item for a noisy dwell, the batch is
fed back. What is recorded per impression is the item's *expected* dwell under the user's
hidden taste at that moment, so the figure of merit is not itself noisy:

    capture(T) = (policy − random) / (oracle − random), mean expected dwell over the first T

averaged over users. ``random`` is the corpus mean (exactly what a random policy earns in
expectation) and ``oracle`` is a policy that knows the hidden taste.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from indexer.store.base import Hit, Store, Vector
from recommender.engine import Engine, Observation
from recommender.policies.oracle import OraclePolicy
from recommender.sim.corpus import SyntheticCorpus
from recommender.sim.users import SimUser
from recommender.state import UserState

# Called after each batch's feedback: (state, the batch shown, impression index of its first)
BatchHook = Callable[[UserState, list[Hit], int], None]


@dataclass
class Trace:
    """One user's run under one policy."""

    policy: str
    model: str
    user: int
    expected: NDArray[np.float64]  # expected dwell of the item shown at each impression
    baseline: NDArray[np.float64]  # what a random item earns at each impression
    first_like: int | None  # impressions until the first liked item (1-based)
    repeats: int
    update_ms: list[float] = field(default_factory=list)  # per feedback event
    recommend_ms: list[float] = field(default_factory=list)  # per recommend call
    state_bytes: int = 0  # bounded part of the final state
    target: Vector | None = None  # the policy's learned target at the end
    views: list[tuple[int, float]] = field(default_factory=list)  # (corpus index, dwell ms)

    def capture(self, oracle: Trace, horizon: int, start: int = 0) -> float:
        """Capture over impressions ``start`` to ``horizon`` (the benchmark's: from 0)."""
        window = slice(start, horizon)
        return capture(self.expected[window], self.baseline[window], oracle.expected[window])


def capture(expected: NDArray[np.float64], baseline: NDArray[np.float64],
            oracle: NDArray[np.float64]) -> float:
    """(policy - random) / (oracle - random) of the mean expected dwell over impressions."""
    base = float(baseline.mean())
    ceiling = float(oracle.mean()) - base
    return (float(expected.mean()) - base) / ceiling if ceiling > 0 else 0.0


class Truth:
    """Expected dwell of every corpus item for one user, per taste phase (cached)."""

    def __init__(self, user: SimUser, corpus: SyntheticCorpus) -> None:
        self.user = user
        self.corpus = corpus
        self._cache: dict[int, NDArray[np.float64]] = {}
        self._liked: dict[int, NDArray[np.bool_]] = {}

    def _phase(self, t: int) -> int:
        s = self.user.switch_at
        return 1 if s is not None and t >= s else 0

    def __call__(self, t: int) -> NDArray[np.float64]:
        p = self._phase(t)
        if p not in self._cache:
            # Taste only: item appeal is noise no policy can know in advance, and an
            # oracle ranking by it would set a ceiling nobody can approach.
            self._cache[p] = self.user.expected_dwell_ms(self.corpus.vectors, None, t)
        return self._cache[p]

    def liked(self, t: int) -> NDArray[np.bool_]:
        p = self._phase(t)
        if p not in self._liked:
            self._liked[p] = self.user.liked(self.corpus.vectors, t)
        return self._liked[p]


class Impressions:
    """What one user is shown, impression by impression: the item's expected dwell under the
    hidden taste, a random item's, when the first liked one came, and each view (corpus
    index, dwell). ``view`` records an impression and draws the user's dwell for it."""

    def __init__(self, user: SimUser, corpus: SyntheticCorpus, rng: np.random.Generator,
                 horizon: int) -> None:
        user.reset()
        self.user, self.corpus, self.rng = user, corpus, rng
        self.truth = Truth(user, corpus)
        self.expected = np.zeros(horizon)
        self.baseline = np.zeros(horizon)
        self.first_like: int | None = None
        self.views: list[tuple[int, float]] = []

    @property
    def t(self) -> int:
        """Impressions so far."""
        return len(self.views)

    @property
    def shown(self) -> list[str]:
        return [self.corpus.ids[j] for j, _ in self.views]

    def view(self, j: int) -> float:
        t = self.t
        self.expected[t] = self.truth(t)[j]
        self.baseline[t] = float(self.truth(t).mean())
        if self.first_like is None and self.truth.liked(t)[j]:
            self.first_like = t + 1
        dwell = self.user.dwell_ms(self.corpus.vectors[j], self.rng, t=t,
                                   appeal=float(self.corpus.appeal[j]))
        self.views.append((j, dwell))
        return dwell


def run_user(
    store: Store, corpus: SyntheticCorpus, user: SimUser, user_index: int, policy: str, *,
    horizon: int, batch: int, seed: int, on_batch: BatchHook | None = None,
) -> Trace:
    seen = Impressions(user, corpus, np.random.default_rng([seed, user_index, 7]), horizon)
    oracle = OraclePolicy(store, np.random.default_rng(seed), truth=seen.truth, ids=corpus.ids)
    engine = Engine(store, default_policy=policy, seed=seed, extra_policies={"oracle": oracle})
    engine.warm()  # once per store: not in the first recommendation's time
    state = engine.new_state(f"{user.model}-{user_index}")
    shown: set[str] = set()
    repeats = 0
    tr = Trace(policy=policy, model=user.model, user=user_index, expected=seen.expected,
               baseline=seen.baseline, first_like=None, repeats=0, views=seen.views)
    while seen.t < horizon:
        t0 = time.perf_counter()
        hits = engine.recommend(state, min(batch, horizon - seen.t))
        tr.recommend_ms.append((time.perf_counter() - t0) * 1000)
        if not hits:
            break
        events = []
        for h in hits:
            j = corpus.index(h.id)
            if h.id in shown:
                repeats += 1
            shown.add(h.id)
            dwell = seen.view(j)
            events.append(Observation(item_id=h.id, vector=corpus.vectors[j], dwell_ms=dwell))
        t0 = time.perf_counter()
        engine.observe(state, events)
        tr.update_ms.append((time.perf_counter() - t0) * 1000 / len(events))
        if on_batch is not None:
            on_batch(state, hits, seen.t - len(hits))
    tr.first_like = seen.first_like
    tr.repeats = repeats
    tr.state_bytes = state.size_bytes()
    tr.target = state.target
    return tr


def run_users(
    store: Store, corpus: SyntheticCorpus, users: Sequence[tuple[int, SimUser]],
    policies: Sequence[str], *, horizon: int, batch: int, seed: int,
) -> list[Trace]:
    """Every user under every policy (and the oracle), one after another."""
    out: list[Trace] = []
    for i, user in users:
        for p in ["oracle", *policies]:
            out.append(run_user(store, corpus, user, i, p, horizon=horizon, batch=batch,
                                seed=seed + 1000 * i))
    return out

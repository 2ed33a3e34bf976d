"""Every policy against a small real Qdrant Edge store: valid, unseen, never repeated."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

import numpy as np
import pytest

from indexer.store.base import Hit
from indexer.store.edge import EdgeStore
from recommender.engine import Engine, Observation
from recommender.errors import UnknownPolicy
from recommender.policies import Policy, Scored, policy_names
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus
from recommender.sim.users import make_users
from recommender.state import UserState

EXPECTED = {"sumo", "sumo-target", "sumo-seed", "random", "rocchio", "qdrant-recommend",
            "qdrant-recommend-best", "qdrant-feedback", "lints"}


@pytest.fixture(scope="module")
def corpus() -> SyntheticCorpus:
    return make_corpus(3000, dim=64, clusters=20, seed=11)


@pytest.fixture(scope="module")
def store(corpus: SyntheticCorpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeStore]:
    s = EdgeStore(tmp_path_factory.mktemp("policies-store"))
    load_corpus(s, corpus)
    yield s
    s.close()


def test_registry_names_every_peer() -> None:
    assert set(policy_names()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_policy_returns_valid_unseen_items(name: str, store: EdgeStore,
                                           corpus: SyntheticCorpus) -> None:
    engine = Engine(store, default_policy=name, seed=3)
    user = make_users("multi", corpus, 1, seed=2)[0]
    state = engine.new_state(f"user-{name}")
    rng = np.random.default_rng(0)
    valid = set(corpus.ids)
    shown: list[str] = []
    for _ in range(25):
        hits = engine.recommend(state, 6)
        assert len(hits) == 6
        for h in hits:
            assert h.id in valid
            assert h.id not in shown
            shown.append(h.id)
        events = [Observation(h.id, corpus.vectors[corpus.index(h.id)],
                              user.dwell_ms(corpus.vectors[corpus.index(h.id)], rng))
                  for h in hits]
        engine.observe(state, events)
    assert len(set(shown)) == len(shown) == 150
    assert state.events == 150 and set(state.seen.recent) == set(shown)
    if name != "random":  # the floor learns nothing
        assert state.target is not None and abs(float(np.linalg.norm(state.target)) - 1) < 1e-4
    assert state.size_bytes() <= 16 * 1024


def test_items_given_feedback_are_never_recommended(store: EdgeStore,
                                                    corpus: SyntheticCorpus) -> None:
    engine = Engine(store, seed=1)
    state = engine.new_state("u")
    # Feedback on items the user was never shown (e.g. via another client) marks them seen.
    near = store.search(corpus.centers[0], 40)
    engine.observe(state, [Observation(h.id, corpus.vectors[corpus.index(h.id)], 9000.0)
                           for h in near])
    got = {h.id for _ in range(10) for h in engine.recommend(state, 5)}
    assert not got & {h.id for h in near}


def test_unknown_policy_names_the_valid_ones(store: EdgeStore) -> None:
    engine = Engine(store)
    with pytest.raises(UnknownPolicy) as err:
        engine.recommend(engine.new_state("u"), 5, policy="nope")
    assert "sumo" in str(err.value) and set(err.value.valid) == EXPECTED
    with pytest.raises(UnknownPolicy):
        Engine(store, default_policy="nope")


def test_a_request_may_switch_the_users_policy(store: EdgeStore, corpus: SyntheticCorpus) -> None:
    engine = Engine(store, seed=2)
    state = engine.new_state("ab")
    hits = engine.recommend(state, 5)
    engine.observe(state, [Observation(h.id, corpus.vectors[corpus.index(h.id)], 3000.0)
                           for h in hits])
    assert state.policy == "sumo" and "win" in state.data
    more = engine.recommend(state, 5, policy="rocchio")
    assert state.policy == "rocchio" and "win" not in state.data
    assert not {h.id for h in more} & {h.id for h in hits}


class _Repeater(Policy):
    """A broken policy that keeps proposing the same items."""

    name = "repeater"
    fixed: list[str] = []

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        return [Hit(id=i, score=1.0) for i in self.fixed] * 2

    def update(self, state: UserState, batch: Sequence[Scored]) -> None:
        return None


def test_engine_keeps_the_no_repeat_promise_whatever_the_policy(store: EdgeStore,
                                                                 corpus: SyntheticCorpus) -> None:
    bad = _Repeater(store, np.random.default_rng(0))
    bad.fixed = corpus.ids[:3]
    engine = Engine(store, default_policy="repeater", seed=0, extra_policies={"repeater": bad})
    state = engine.new_state("u")
    first = [h.id for h in engine.recommend(state, 5)]
    second = [h.id for h in engine.recommend(state, 5)]
    assert len(first) == len(set(first)) == 5 and len(second) == 5
    assert not set(first) & set(second)


def test_seed_warm_starts_the_target(store: EdgeStore, corpus: SyntheticCorpus) -> None:
    engine = Engine(store, seed=0)
    state = engine.new_state("u")
    liked = corpus.vectors[corpus.labels == 4][:3]
    engine.seed(state, list(liked))
    assert state.target is not None
    hits = engine.recommend(state, 5)
    labels = [int(corpus.labels[corpus.index(h.id)]) for h in hits]
    assert labels.count(4) >= 1  # the warm start is exploited from the first batch

"""The bounded seen set: exact recent ids, older ones as fingerprints; queries that honour
both on either backend; stored states of older versions migrated, bad values repaired."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.store.base import Store
from indexer.store.edge import EdgeStore
from indexer.store.server import ServerStore
from recommender.engine import Engine, Observation
from recommender.exclusion import Exclusion, SeenFilteringStore, excluding
from recommender.seen import (
    SeenSet,
    decode_fingerprints,
    encode_fingerprints,
    fingerprint_bits,
)
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus
from recommender.state import UserState


def hex_ids(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [rng.bytes(16).hex() for _ in range(n)]


@pytest.mark.parametrize("n", [0, 1, 2, 9, 1000, 20_000])
def test_fingerprint_code_round_trips(n: int) -> None:
    rng = np.random.default_rng(n)
    bits = fingerprint_bits(n)
    v = np.unique(rng.integers(0, 2**bits, n).astype(np.uint32))
    back, b = decode_fingerprints(encode_fingerprints(v, bits))
    assert b == bits and np.array_equal(back, v)


def test_seen_set_never_forgets_and_stays_small() -> None:
    ids = hex_ids(20_000, 0)
    seen = SeenSet()
    for k in range(0, len(ids), 4):
        seen.add(ids[k:k + 4])
    assert all(i in seen for i in ids)  # no false repeats
    # A few ids whose fingerprint matched an older one count as seen already.
    assert 19_900 < len(seen) <= 20_000
    recent = set(seen.recent)
    assert len(recent) < 128 + 64 and seen.recent == [i for i in ids[-400:] if i in recent]
    stored = json.dumps(seen.to_dict())
    assert len(stored) < 37_000  # vs ~700 KB as a JSON list
    back = SeenSet.from_dict(json.loads(stored))
    assert back == seen and all(i in back for i in ids[::7])
    # Unseen items hidden by a fingerprint match: close to n_old / 2^bits (4.7e-3 here).
    others = hex_ids(100_000, 1)
    rate = sum(i in back for i in others) / len(others)
    expected = back.old_count / 2 ** fingerprint_bits(back.old_count)
    assert expected < 0.005 and 0.5 * expected < rate < 1.5 * expected


def test_seen_set_with_other_ids_and_narrowing_fingerprints() -> None:
    ids = [f"item/{k}" for k in range(9000)]  # not hex: stored as a list
    seen = SeenSet(keep=10, fold=5)
    seen.add(ids[:8000])  # 8,000 folded: 24-bit fingerprints
    seen.add(ids[8000:])  # past 8,192: narrowed to 23 bits, the old ones truncated
    back = SeenSet.from_dict(json.loads(json.dumps(seen.to_dict())))
    assert isinstance(seen.to_dict()["recent"], list)
    assert all(i in back for i in ids) and "item/9001" not in back.recent


def test_a_format_1_state_migrates(caplog: pytest.LogCaptureFixture) -> None:
    ids = hex_ids(700, 2)
    old = {"format": 1, "user_id": "u", "policy": "random", "target": None, "events": 3,
           "engagement": 1.5, "last_active": 1.7e9, "seen": ids, "dwell": {}, "data": {}}
    state = UserState.from_dict(old)
    assert len(state.seen) == 700 and all(state.is_seen(i) for i in ids)
    assert state.seen.recent == ids[-len(state.seen.recent):]
    assert state.to_dict()["format"] == 2
    assert UserState.from_dict(json.loads(json.dumps(state.to_dict()))).seen == state.seen


def test_bad_stored_values_are_repaired_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    d = UserState("u", "sumo", last_active=1.7e9).to_dict()
    with caplog.at_level(logging.WARNING, logger="sumo.state"):
        ms = UserState.from_dict({**d, "last_active": 1.7e12})  # milliseconds
        assert ms.last_active == pytest.approx(1.7e9)
        for bad in (float("inf"), -5.0, "soon", 1e300):
            assert UserState.from_dict({**d, "last_active": bad}).last_active == 0.0
        broken = UserState.from_dict({**d, "target": "!!not base64", "events": -3,
                                      "dwell": {"history": ["x"]}, "seen": {"recent": 5}})
    assert broken.target is None and broken.events == 0 and len(broken.seen) == 0
    assert "milliseconds" in caplog.text and "stored target is invalid" in caplog.text


# --- queries through the filtering store, on both backends --------------------------------
@pytest.fixture(scope="module")
def corpus() -> SyntheticCorpus:
    return make_corpus(400, dim=16, clusters=6, seed=5)


@pytest.fixture(scope="module", params=["edge", "server"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          corpus: SyntheticCorpus) -> Iterator[Store]:
    s: Store = (EdgeStore(tmp_path_factory.mktemp("seen")) if request.param == "edge"
                else ServerStore(":memory:"))
    load_corpus(s, corpus)
    yield s
    s.close()


def test_queries_exclude_fingerprinted_items_like_exact_ids(store: Store,
                                                            corpus: SyntheticCorpus) -> None:
    rng = np.random.default_rng(0)
    seen = SeenSet(keep=10, fold=5)
    seen.add([corpus.ids[i] for i in rng.permutation(len(corpus.ids))[:250]])
    assert seen.old_count > 200
    exclusion = Exclusion(seen)
    everything = {i for i in corpus.ids if i in seen}  # exact ids of all seen items
    filtered = SeenFilteringStore(store)
    q = corpus.vectors[:3]
    for k in range(3):
        got = filtered.search(q[k], 20, exclude=exclusion)
        want = store.search(q[k], 20, exclude=everything)
        assert [h.id for h in got] == [h.id for h in want]
    many = filtered.search_many(list(q), 5, exclude=excluding(exclusion, ["x"]))
    assert [[h.id for h in r] for r in many] == [
        [h.id for h in r] for r in store.search_many(list(q), 5, exclude=everything)]
    # 20 wanted: the batched round (20 + OVERFETCH) leaves them short, so each query goes on
    # in rounds of its own.
    many = filtered.search_many(list(q), 20, exclude=exclusion)
    assert [[h.id for h in r] for r in many] == [
        [h.id for h in r] for r in store.search_many(list(q), 20, exclude=everything)]
    with_vectors = filtered.search_many(list(q), 4, exclude=exclusion, with_vectors=True)
    assert all(np.allclose(h.vector, corpus.vectors[corpus.index(h.id)], atol=1e-5)
               for r in with_vectors for h in r)
    mmr = filtered.search_mmr(q[0], 5, diversity=0.3, candidates=40, exclude=exclusion)
    assert len(mmr) == 5 and not any(h.id in seen for h in mmr)
    sample = filtered.sample(100, exclude=exclusion, seed=1)
    assert len(sample) == 100 and not any(h.id in seen for h in sample)
    assert len(filtered.sample(500, exclude=exclusion)) == len(corpus.ids) - len(everything)


def test_engine_never_repeats_with_a_small_exact_window(store: Store,
                                                       corpus: SyntheticCorpus) -> None:
    engine = Engine(store, default_policy="sumo", seed=1)
    state = engine.new_state("heavy")
    state.seen = SeenSet(keep=8, fold=4)  # nearly everything seen is a fingerprint
    rng = np.random.default_rng(1)
    shown: list[str] = []
    while hits := engine.recommend(state, 7):
        shown += [h.id for h in hits]
        v = corpus.vectors[corpus.index(hits[0].id)]
        engine.observe(state, [Observation(hits[0].id, v, float(rng.lognormal(7, 1)))])
    assert len(shown) == len(set(shown))
    # Only items hidden by a fingerprint match may stay unshown (about 400^2 / 2^26: none).
    assert len(shown) >= len(corpus.ids) - 2


def test_old_documents_still_load_through_the_repository(tmp_path: Path) -> None:
    from recommender.users import UserRepository
    from recommender.users.document import NAMESPACE

    with EdgeStore(tmp_path) as s:
        ids = [uuid.uuid4().hex for _ in range(3)]
        old_state = {"format": 1, "user_id": "old", "policy": "gone-policy", "target": None,
                     "events": 2, "engagement": 1.0, "last_active": 1.7e12, "seen": ids,
                     "dwell": {}, "data": {"x": 1}}
        record = json.dumps({"state": old_state, "event_ids": ["abcdefghijkl"]})
        s.put_document(NAMESPACE, "old", {"record": record}, expected_version=0)
        repo = UserRepository(s, Engine(s, default_policy="random"))
        loaded = repo.load("old")
        assert loaded is not None and loaded.applied("abcdefghijkl")
        assert loaded.state.policy == "random" and loaded.state.data == {}
        assert all(loaded.state.is_seen(i) for i in ids)
        summary = repo.summary("old").to_dict()
        assert summary["seen"] == 3 and str(summary["last_active"]).startswith("2023-11-14")

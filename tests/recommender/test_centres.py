"""Region centres answered from per-process lists: the same answers as a search, kept current."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import pytest

from indexer.store.base import Beams, Hit, Item, Vector
from indexer.store.edge import EdgeStore
from indexer.store.server import ServerStore
from recommender import centres, regions
from recommender.engine import Engine, Observation
from recommender.policies import sumo
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus
from recommender.sim.users import make_users


@pytest.fixture(scope="module")
def corpus() -> SyntheticCorpus:
    return make_corpus(3000, dim=64, clusters=12, seed=4)


class CountingStore(EdgeStore):
    """Counts the queries a request sends to the store (not the exact ones that find the
    lists); ``lists=False`` hides its revision, so no lists are kept over it."""

    def __init__(self, folder: Path, *, lists: bool) -> None:
        super().__init__(folder, exact=True)
        self.lists, self.queries = lists, 0

    @property
    def revision(self) -> int | None:
        return super().revision if self.lists else None

    def search_many(self, vectors: Sequence[Vector], limit: int, *,
                    exclude: Collection[str] = (), with_vectors: bool = False,
                    ef: Beams = None, exact: bool = False) -> list[list[Hit]]:
        self.queries += 0 if exact else len(vectors)
        return super().search_many(vectors, limit, exclude=exclude, with_vectors=with_vectors,
                                   ef=ef, exact=exact)


def _feed(store: EdgeStore, corpus: SyntheticCorpus) -> list[list[str]]:
    """What ``sumo`` shows three simulated users over 45 batches of five (past the point
    where older seen items are only fingerprints)."""
    engine = Engine(store, seed=5)
    engine.warm()
    shown = []
    for model in ("niche", "broad", "multi"):
        user = make_users(model, corpus, 1, seed=9)[0]
        state, rng = engine.new_state(model), np.random.default_rng(1)
        for _ in range(45):
            hits = engine.recommend(state, 5)
            shown.append([h.id for h in hits])
            vectors = [corpus.vectors[corpus.index(h.id)] for h in hits]
            engine.observe(state, [Observation(h.id, v, user.dwell_ms(v, rng))
                                   for h, v in zip(hits, vectors, strict=True)])
    return shown


def test_lists_change_no_answer_and_save_queries(tmp_path: Path, corpus: SyntheticCorpus,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Over an exact store a centre's list is exactly what a search would find, so the feed
    # is the same item for item; only the store sees fewer queries (a niche user soon sees
    # most of a list, and then its centre is searched). The likeliest mode's blend, searched
    # either way, is left out: its query alone would tell the two apart.
    monkeypatch.setattr(sumo, "MODE_MASS", 2.0)
    feeds, queries = [], []
    for lists in (True, False):
        with CountingStore(tmp_path / str(lists), lists=lists) as store:
            load_corpus(store, corpus)
            feeds.append(_feed(store, corpus))
            queries.append(store.queries)
    assert feeds[0] == feeds[1]
    with_lists, without = queries
    assert with_lists < 0.9 * without


def test_a_write_renews_the_lists(tmp_path: Path, corpus: SyntheticCorpus) -> None:
    with EdgeStore(tmp_path / "s") as store:
        load_corpus(store, corpus)
        m = regions.refresh(store)
        assert m is not None
        first = centres.lists_for(store, m)
        assert first is not None and centres.lists_for(store, m) is first  # kept
        assert all(len(near) == centres.NEAR for near in first.near)
        nearest = first.near[0][0].id
        store.delete([nearest])
        after = centres.lists_for(store, m)
        assert after is not None and after is not first
        assert nearest not in {h.id for h in after.near[0]}
        store.upsert([Item("at-the-centre", m.centroids[0])])
        assert centres.lists_for(store, m).near[0][0].id == "at-the-centre"  # type: ignore[union-attr]


def test_answers_leave_out_the_seen_and_fall_short_to_a_search(tmp_path: Path,
                                                                corpus: SyntheticCorpus) -> None:
    with EdgeStore(tmp_path / "s") as store:
        load_corpus(store, corpus)
        m = regions.refresh(store)
        assert m is not None
        lists = centres.lists_for(store, m)
        assert lists is not None
        ids = [h.id for h in lists.near[3]]
        got = lists.answer(3, 10, exclude=set(ids[:5]))
        assert got is not None and [h.id for h in got] == ids[5:15]
        assert all(h.vector is not None for h in got)
        assert lists.answer(3, 10, exclude=set(ids[:40])) is None


def test_a_server_store_keeps_no_lists(corpus: SyntheticCorpus) -> None:
    # Other processes write to a server: nothing here could tell when a list went stale.
    with ServerStore(":memory:") as store:
        load_corpus(store, corpus)
        m = regions.refresh(store)
        assert m is not None and centres.lists_for(store, m) is None

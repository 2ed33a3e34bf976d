"""Simulated users over a throw-away store: the seeding and store helpers the studies in
``research/`` share (the benchmark, ``recommender.sim.bench``, runs its own workers)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer.store.base import Store
from indexer.store.edge import EdgeStore
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus
from recommender.sim.runner import BatchHook, Trace, run_user
from recommender.sim.users import SimUser


@contextmanager
def store_of(corpus: SyntheticCorpus, *, exact: bool = False) -> Iterator[EdgeStore]:
    """``corpus`` loaded into an Edge store in a temporary folder (``root.parent``), deleted
    after. ``exact``: searches compare every vector, so runs repeat exactly (the HNSW graph's
    construction is randomised: two builds answer a few queries differently, and a user's
    run diverges from there)."""
    folder = Path(tempfile.mkdtemp(prefix="sumo-sim-"))
    try:
        with EdgeStore(folder, exact=exact) as store:
            load_corpus(store, corpus)
            yield store
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def simulated_store(
    items: int, seed: int, *, exact: bool = False
) -> Iterator[tuple[SyntheticCorpus, Store]]:
    """The benchmark's corpus (512-d, 200 clusters) in a temporary Edge store."""
    corpus = make_corpus(items, 512, 200, seed=seed)
    with store_of(corpus, exact=exact) as store:
        yield corpus, store


def run_with_oracle(
    store: Store, corpus: SyntheticCorpus, user: SimUser, index: int, policy: str, *,
    horizon: int, batch: int, seed: int, on_batch: BatchHook | None = None,
) -> tuple[Trace, Trace]:
    """(policy, oracle) runs of one user, seeded by ``user_seed``: capture needs both."""
    runs = []
    for p, hook in ((policy, on_batch), ("oracle", None)):
        runs.append(run_user(store, corpus, user, index, p, horizon=horizon, batch=batch,
                             seed=user_seed(seed, index), on_batch=hook))
    return runs[0], runs[1]


def user_seed(seed: int, index: int) -> int:
    """The run seed of user ``index`` in a study (the benchmark's, ``bench_seed``, is this
    + 17, so a study's users are not the benchmark's)."""
    return seed * 7919 + 1000 * index

"""The planted-gap simulation: users who want missing content use the real HTTP service.

A synthetic CLIP-like corpus (``make_corpus``) has three mid-sized clusters removed (the
holes). Users whose tastes lie in the holes, and users whose tastes lie in clusters the
collection serves, use the service the way the feed page does: recommendations, dwell
feedback, batch after batch (the deployment's default policy learns them and stores their
states). A control run keeps every cluster, with the same people.

A hole is *found* when a region flagged as a gap, among the report's top 3, has the
removed cluster's centre as the nearest of all cluster centres to its centroid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.store.base import Store
from recommender.sim.corpus import SyntheticCorpus, make_corpus
from recommender.sim.harness import store_of
from recommender.sim.text import SyntheticText
from recommender.sim.users import SimUser, make_users

WORDINGS = ("more of these", "like this", "please", "anything", "best ones", "new")


@dataclass(frozen=True)
class GapSim:
    items: int = 6000
    dim: int = 64
    clusters: int = 40
    holes: int = 3
    per_hole: int = 8  # users who want each hole's content
    elsewhere: int = 24  # users of served clusters
    views: int = 60  # impressions per user
    batch: int = 10
    searches: int = 1  # "show me more of ..." searches per user, before the first view


def pick_holes(corpus: SyntheticCorpus, n: int, seed: int) -> tuple[int, ...]:
    """``n`` mid-sized clusters (between the 30th and 70th size percentile), from distinct
    topics when possible, so no two holes are one blob."""
    sizes = corpus.cluster_sizes
    lo, hi = np.quantile(sizes, [0.3, 0.7])
    mid = [int(c) for c in np.flatnonzero((sizes >= lo) & (sizes <= hi))]
    rng = np.random.default_rng([seed, 17])
    rng.shuffle(mid)
    chosen: list[int] = []
    for c in mid:
        if all(corpus.topics[c] != corpus.topics[o] for o in chosen):
            chosen.append(c)
        if len(chosen) == n:
            break
    for c in mid:  # fewer topics than holes: allow repeats
        if len(chosen) == n:
            break
        if c not in chosen:
            chosen.append(c)
    return tuple(sorted(chosen))


def corpora(sim: GapSim, seed: int) -> tuple[SyntheticCorpus, SyntheticCorpus]:
    """(with holes, control): the same cluster centres, the holes' items removed."""
    full = make_corpus(sim.items, dim=sim.dim, clusters=sim.clusters, seed=seed)
    holes = pick_holes(full, sim.holes, seed)
    return make_corpus(sim.items, dim=sim.dim, clusters=sim.clusters, seed=seed,
                       holes=holes), full


def people(sim: GapSim, corpus: SyntheticCorpus, holes: tuple[int, ...], seed: int
           ) -> list[SimUser]:
    """Niche users in the holes, then niche users of served clusters (same seeds on both
    corpora: the same people, whatever the collection holds)."""
    return (make_users("niche", corpus, sim.per_hole * len(holes), seed=seed * 31 + 5,
                       clusters=list(holes))
            + make_users("niche", corpus, sim.elsewhere, seed=seed * 31 + 6))


def use_the_service(client: Any, corpus: SyntheticCorpus, users: list[SimUser], sim: GapSim,
                    seed: int, prefix: str = "sim",
                    views: list[list[tuple[int, float]]] | None = None) -> None:
    """Every user through ``client`` (a TestClient or an httpx client of a running app);
    ``views`` collects each user's (corpus index, dwell ms), for studies."""
    rng = np.random.default_rng([seed, 99])
    for i, user in enumerate(users):
        t = 0
        if views is not None:
            views.append([])
        uid = f"{prefix}-{i}"
        # People name what they want in their own words: the concept, and a wording.
        concept = int(np.argmax(corpus.centers @ user.taste))
        for k in range(sim.searches):
            wording = WORDINGS[int(rng.integers(len(WORDINGS)))]
            client.post(f"/v1/users/{uid}/seed",
                        json={"text": f"cluster {concept}, {wording} {k}"}).raise_for_status()
        while t < sim.views:
            rec = client.get(f"/v1/users/{uid}/recommendations",
                             params={"limit": min(sim.batch, sim.views - t)})
            rec.raise_for_status()
            events = []
            for item in rec.json()["items"]:
                j = corpus.index(item["id"])
                dwell = user.dwell_ms(corpus.vectors[j], rng, t=t,
                                      appeal=float(corpus.appeal[j]))
                if views is not None:
                    views[-1].append((j, dwell))
                events.append({"item_id": item["id"], "dwell_ms": round(dwell, 1),
                               "event_id": f"{uid}-{t}"})
                t += 1
            if not events:
                break
            client.post(f"/v1/users/{uid}/feedback", json={"events": events}).raise_for_status()


# Builds the HTTP app over a store (``recommender.api.app.create_app`` with these
# arguments). Passed in by the caller: the simulator sits below the API and never imports it.
AppFactory = Callable[..., Any]


@contextmanager
def served_store(corpus: SyntheticCorpus, users: list[SimUser], sim: GapSim, seed: int,
                 create_app: AppFactory,
                 views: list[list[tuple[int, float]]] | None = None) -> Iterator[Store]:
    """``corpus`` in a temporary Edge store after ``users`` used the service over it
    (the app ``create_app(settings, store=..., embedder=...)`` builds)."""
    from fastapi.testclient import TestClient

    from recommender.settings import Settings

    with store_of(corpus) as store:
        settings = Settings(data=store.root.parent, qdrant_url=None, api_key=None,
                            admin_key=None, seed=seed)
        app = create_app(settings, store=store, embedder=SyntheticText(corpus, seed))
        with TestClient(app) as client:
            use_the_service(client, corpus, users, sim, seed, views=views)
        yield store


def found_holes(regions: list[Any], corpus: SyntheticCorpus, holes: tuple[int, ...],
                top: int = 3) -> list[int]:
    """The holes found: a flagged region among the ``top`` whose centroid has the hole's
    centre as its nearest cluster centre (of all centres, removed ones included)."""
    found = []
    for r in regions[:top]:
        if not r.gap:
            continue
        nearest = int(np.argmax(corpus.centers @ np.asarray(r.centroid, np.float32)))
        if nearest in holes and nearest not in found:
            found.append(nearest)
    return sorted(found)

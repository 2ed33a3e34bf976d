"""Gap report: scoring on small hand-made geometries, over a real store (Qdrant Edge in a
tmp folder), and the three surfaces (CLI, API, page) showing the same regions."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexer.store.base import Store
from indexer.store.edge import EdgeStore
from recommender import searches
from recommender.api.app import create_app
from recommender.gaps import describe as describe_module
from recommender.gaps.demand import DemandOptions, demand_from_states, user_weights
from recommender.gaps.describe import ConceptKind, concept_matrix, load_concepts
from recommender.gaps.render import standalone
from recommender.gaps.report import GapOptions, build_report, text_to_image
from recommender.gaps.supply import SupplyOptions, calibrate, measure, onto_shell
from recommender.kmeans import cluster_targets
from recommender.searches import iter_searches
from recommender.settings import Settings
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus
from recommender.sim.text import SyntheticText
from recommender.state import UserState
from sumo.cli import run as sumo

DIM = 64
HOLE = 4
SUPPLY = SupplyOptions(calibration_items=300)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def near(rng: np.random.Generator, centre: np.ndarray, noise: float) -> np.ndarray:
    return unit(centre + noise * rng.standard_normal(centre.shape[0]) / math.sqrt(centre.shape[0]))


def put_users(store: Store, targets: Sequence[np.ndarray], *, prefix: str = "u",
              engagement: float = 120.0, events: int = 60, last_active: float = 1.7e9) -> None:
    for i, t in enumerate(targets):
        st = UserState(f"{prefix}{i}", "sumo", target=np.asarray(t, np.float32), events=events,
                       engagement=engagement, last_active=last_active)
        store.put_document("users", st.user_id, st.to_dict(), expected_version=0)


@pytest.fixture(scope="module")
def corpus() -> SyntheticCorpus:
    return make_corpus(4000, dim=DIM, clusters=16, seed=2, holes=(HOLE,))


@pytest.fixture()
def store(tmp_path: Path, corpus: SyntheticCorpus) -> Store:
    s = EdgeStore(tmp_path / "data")
    load_corpus(s, corpus)
    return s


# --- supply: isolation calibrated by the corpus ---------------------------------------------
def test_hole_centre_is_isolated_and_a_cluster_centre_is_not(
    store: Store, corpus: SyntheticCorpus
) -> None:
    cal = calibrate(store, SUPPLY)
    assert 0.5 < float(np.median(cal.isolation)) < 1.5  # items sit ~one spacing apart
    filled = int(np.argmax(corpus.cluster_sizes))
    hole = measure(store, corpus.centers[HOLE], cal, SUPPLY)
    served = measure(store, corpus.centers[filled], cal, SUPPLY)
    assert hole.isolation > cal.threshold * 1.2
    assert served.isolation < 1.0 < hole.isolation
    assert served.within > hole.within


def test_onto_shell_keeps_the_distinctive_direction(store: Store, corpus: SyntheticCorpus) -> None:
    cal = calibrate(store, SUPPLY)
    m = cal.mean_dir
    c = corpus.centers[3]
    stripped = unit(c - float(c @ m) * m)  # a target that lost CLIP's shared component
    back = onto_shell(stripped, cal)
    assert abs(float(back @ m) - cal.shell) < 1e-4
    assert float(back @ c) > float(stripped @ c)


# --- demand weights ---------------------------------------------------------------------------
def test_weights_grow_with_engagement_and_decay_with_age() -> None:
    eng = np.array([10.0, 100.0, 1000.0, 100.0])
    last = np.array([100.0, 100.0, 100.0, 100.0 - 30 * 86400])
    w = user_weights(eng, last, reference=100.0, half_life_days=30.0)
    assert w[0] < w[1] < w[2] <= 1.0
    assert w[3] == pytest.approx(w[1] / 2)


def test_demand_skips_cold_and_unreadable_users_and_samples() -> None:
    rng = np.random.default_rng(0)
    bodies = [UserState(f"u{i}", "sumo", target=near(rng, np.ones(8), 1.0), events=20,
                        engagement=50.0, last_active=1.0).to_dict() for i in range(50)]
    bodies.append(UserState("cold", "sumo", target=None).to_dict())
    bodies.append(UserState("new", "sumo", target=unit(np.ones(8)), events=2).to_dict())
    bodies.append({"format": 999})
    d = demand_from_states(bodies, DemandOptions(max_users=20))
    assert d.eligible == 50 and len(d.user_ids) == 20 and d.sampled
    assert d.skipped == {"no_target": 1, "few_events": 1, "unreadable": 1}
    assert d.scale == pytest.approx(2.5)


# --- clustering ---------------------------------------------------------------------------------
def test_k_is_chosen_by_the_data() -> None:
    rng = np.random.default_rng(1)
    centres = [unit(rng.standard_normal(DIM)) for _ in range(3)]
    x = np.stack([near(rng, c, 0.4) for c in centres for _ in range(30)])
    cl = cluster_targets(x, np.ones(len(x)), seed=0)
    assert cl.k == 3
    for c in centres:
        assert float(np.max(cl.centers @ c)) > 0.95
    blob = np.stack([near(rng, centres[0], 0.4) for _ in range(60)])
    assert cluster_targets(blob, np.ones(60), seed=0).k == 1


# --- scoring ---------------------------------------------------------------------------------
def test_demand_in_a_hole_is_a_gap_and_served_demand_is_not(
    store: Store, corpus: SyntheticCorpus
) -> None:
    rng = np.random.default_rng(3)
    filled = [int(c) for c in np.argsort(-corpus.cluster_sizes)[:2]]
    put_users(store, [near(rng, corpus.centers[HOLE], 0.3) for _ in range(12)], prefix="hole")
    for c in filled:
        put_users(store, [near(rng, corpus.centers[c], 0.3) for _ in range(12)], prefix=f"c{c}-")
    rep = build_report(store, GapOptions(supply=SUPPLY))
    assert [r.gap for r in rep.regions] == [True, False, False]
    top = rep.regions[0]
    assert float(top.centroid @ corpus.centers[HOLE]) > 0.95
    assert top.score > 0 and top.users == 12 and top.supply.isolation > top.isolation_ratio
    for r in rep.regions[1:]:
        assert r.score < 0 and r.supply.within > top.supply.within
    body = rep.to_dict()
    assert body["gaps"] == 1 and body["threshold"]["score"] == 0.0
    assert len(body["regions"][0]["centroid"]) == DIM


def test_too_little_demand_is_never_a_gap(store: Store, corpus: SyntheticCorpus) -> None:
    rng = np.random.default_rng(4)
    # Nine users of typical engagement weigh 9 × (1 − 1/e) ≈ 5.7 users.
    put_users(store, [near(rng, corpus.centers[HOLE], 0.3) for _ in range(9)])
    heavy = build_report(store, GapOptions(supply=SUPPLY, min_demand=3.0))
    light = build_report(store, GapOptions(supply=SUPPLY, min_demand=6.0))
    assert len(heavy.regions) == 1
    assert heavy.regions[0].score > 0 and heavy.regions[0].gap
    assert light.regions[0].score > 0 and not light.regions[0].gap


def test_a_smear_of_served_tastes_is_not_a_gap(store: Store, corpus: SyntheticCorpus) -> None:
    """One region over two distant served clusters: its centroid falls between them, where
    there are no items, but the demand is not concentrated there."""
    rng = np.random.default_rng(5)
    a, b = (int(c) for c in np.argsort(-corpus.cluster_sizes)[:2])
    put_users(store, [near(rng, corpus.centers[c], 0.3) for c in (a, b) for _ in range(10)])
    rep = build_report(store, GapOptions(supply=SUPPLY, max_regions=1))
    (r,) = rep.regions
    assert r.concentration < 1.0 and r.score < 0 and not r.gap


def test_no_users_gives_an_empty_report(store: Store) -> None:
    rep = build_report(store, GapOptions(supply=SUPPLY))
    assert rep.regions == [] and rep.to_dict()["regions"] == []


def test_vocabulary_is_shipped_deduplicated_and_large() -> None:
    concepts = load_concepts()
    texts = [c.text.lower() for c in concepts]
    assert len(texts) >= 2500 and len(set(texts)) == len(texts)
    kinds = {c.kind for c in concepts}
    assert kinds == {ConceptKind.NOUN, ConceptKind.SCENE, ConceptKind.STYLE}


# --- surfaces: CLI, API and page show the same regions -----------------------------------------
def test_cli_api_and_page_show_the_same_regions(
    tmp_path: Path, corpus: SyntheticCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    with EdgeStore(data) as s:
        load_corpus(s, corpus)
        rng = np.random.default_rng(6)
        put_users(s, [near(rng, corpus.centers[HOLE], 0.3) for _ in range(10)], prefix="h")
        big = int(np.argmax(corpus.cluster_sizes))
        put_users(s, [near(rng, corpus.centers[big], 0.3) for _ in range(10)], prefix="b")

    assert sumo(["gaps", "--data", str(data), "--json", "--limit", "5"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert sumo(["gaps", "--data", str(data), "--html", str(tmp_path / "r.html")]) == 0
    table = capsys.readouterr().out
    assert "GAP" in table and "no labels" in table  # imported vectors: no text encoder

    settings = Settings(data=data, qdrant_url=None, api_key=None, admin_key="adm")
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/gaps").status_code == 401
        api = client.get("/v1/gaps?limit=5&map=true",
                         headers={"Authorization": "Bearer adm"}).json()
        page = client.get("/gaps")
    assert [r["id"] for r in api["regions"]] == [r["id"] for r in cli["regions"]]
    for a, c in zip(api["regions"], cli["regions"], strict=True):
        assert a["gap"] == c["gap"]
        assert float(np.dot(a["centroid"], c["centroid"])) > 0.999
        assert a["nearest_items"][0]["id"] == c["nearest_items"][0]["id"]
    assert api["regions"][0]["gap"] and api["gaps"] == cli["gaps"] == 1
    assert api["labels_note"] and api["regions"][0]["labels"] == []
    m = api["map"]
    assert len(m["targets"]) == 20 and len(m["items"]) > 100 and len(m["regions"]) == 2
    assert page.status_code == 200 and "/v1/gaps" in page.text
    assert "sumo-gaps-data" in (tmp_path / "r.html").read_text()
    assert '"regions"' in standalone(cli)


# --- searches as demand ------------------------------------------------------------------------
def test_unmet_searches_at_a_hole_make_a_gap_and_met_ones_do_not(
    store: Store, corpus: SyntheticCorpus
) -> None:
    text = SyntheticText(corpus)
    big = int(np.argmax(corpus.cluster_sizes))
    for i in range(6):
        for c in (HOLE, big):
            q = f"cluster {c}, wording {i}"
            searches.record(store, q, text.encode_text(q), f"u{c}-{i}", now=1.7e9)
    rep = build_report(store, GapOptions(supply=SUPPLY), encoder=text)
    assert [r.gap for r in rep.regions] == [True, False]
    hole, served = rep.regions
    assert int(np.argmax(corpus.centers @ hole.centroid)) == HOLE
    assert int(np.argmax(corpus.centers @ served.centroid)) == big
    assert hole.signals == ["unmet_searches"] and hole.unmet_searches == hole.searches == 6
    assert served.unmet_searches == 0 and served.score <= 0
    assert hole.users == 0 and len(hole.queries) == 5
    assert hole.reach_ratio > 1.0 > served.reach_ratio
    body = rep.to_dict()
    assert body["sampled"]["searches"] == 12 and body["regions"][0]["signals"] == hole.signals


def test_the_text_cone_is_taken_off_before_searches_meet_images(
    store: Store, corpus: SyntheticCorpus
) -> None:
    text = SyntheticText(corpus)
    cal = calibrate(store, SUPPLY)
    raw = text.encode_texts(["cluster 3, a", "cluster 3, b"])
    cone = unit(text.encode_texts([f"anything {i}" for i in range(300)]).mean(axis=0))
    mapped = text_to_image(raw, cone, cal)
    centre = onto_shell(corpus.centers[3], cal)
    # Raw text embeddings sit in their own cone, far from the images; mapped, at the concept.
    assert float(raw[0] @ centre) < 0.6
    assert all(float(m @ centre) > 0.9 for m in mapped)


def test_a_search_is_recorded_once_per_user_and_query(tmp_path: Path, corpus: SyntheticCorpus
                                                       ) -> None:
    data = tmp_path / "data"
    store = EdgeStore(data)
    load_corpus(store, corpus)
    settings = Settings(data=data, qdrant_url=None, api_key=None, admin_key=None)
    app = create_app(settings, store=store, embedder=SyntheticText(corpus))
    with TestClient(app) as client:
        for _ in range(2):
            r = client.get("/v1/search", params={"q": "cluster 2, red", "user_id": "ann"})
            assert r.status_code == 200 and r.json()["items"]
        assert client.get("/v1/search", params={"q": "cluster 2, red"}).status_code == 200
        seeded = client.post("/v1/users/bob/seed", json={"text": "cluster 5, more"})
        assert seeded.status_code == 200
    found = sorted((s.user_id or "-", s.query, s.count) for s in iter_searches(store))
    store.close()
    assert found == [("-", "cluster 2, red", 1), ("ann", "cluster 2, red", 2),
                     ("bob", "cluster 5, more", 1)]


def test_cli_says_why_a_report_is_empty(
    tmp_path: Path, corpus: SyntheticCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    with EdgeStore(data) as s:
        load_corpus(s, corpus)
        put_users(s, [unit(corpus.centers[1])], events=2)  # too few events to count
    assert sumo(["gaps", "--data", str(data), "--no-labels"]) == 0
    out = capsys.readouterr()
    assert f"items: {len(corpus.ids)}" in out.out
    assert "users need at least 5 feedback events" in out.out and "(1 have fewer)" in out.out
    assert "could not be loaded" not in out.out
    assert "gaps: reading users and searches" in out.err  # progress, on stderr


def test_label_vocabulary_is_kept_on_disk(
    tmp_path: Path, corpus: SyntheticCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model with fixed weights encodes the vocabulary once; a new process (a fresh
    in-process cache) reads it back from disk."""

    class Named(SyntheticText):  # the synthetic text side under a checkpoint-like name
        calls = 0

        def encode_texts(self, texts: list[str]) -> np.ndarray:
            Named.calls += 1
            return super().encode_texts(texts)

    monkeypatch.setenv("SUMO_CACHE_DIR", str(tmp_path / "cache"))
    enc = Named(corpus)
    enc.name = "ViT-X/some-tag"
    concepts = load_concepts()[:300]
    first = concept_matrix(enc, concepts)
    assert Named.calls == 2 and list((tmp_path / "cache" / "labels").glob("*.npy"))
    describe_module._CACHE.clear()
    again = concept_matrix(enc, concepts)
    assert Named.calls == 2 and np.allclose(first, again)
    enc.name = "ViT-X/none"  # random weights: never from disk
    concept_matrix(enc, concepts)
    assert Named.calls == 4

"""The family of simulated worlds and their known-model ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.sim.ceiling import ceiling_run
from recommender.sim.runner import Truth
from recommender.sim.worlds import CORPORA, DWELLS, UnknownWorld, world, world_names

N, DIM, CLUSTERS = 2000, 64, 20


@pytest.mark.parametrize("name", list(CORPORA))
def test_every_corpus_is_unit_norm_labelled_and_deterministic(name: str) -> None:
    w = world(f"{name}:mixed")
    a = w.make_corpus(N, 1, DIM, CLUSTERS)
    b = w.make_corpus(N, 1, DIM, CLUSTERS)
    assert a.vectors.shape == (N, DIM) and len(a.ids) == N == len(set(a.ids))
    np.testing.assert_allclose(np.linalg.norm(a.vectors, axis=1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert a.labels.max() < len(a.centers) and len(a.appeal) == N


def test_corpora_differ_in_the_way_they_promise() -> None:
    def nearest_cos(name: str) -> float:
        c = world(f"{name}:mixed").make_corpus(N, 2, DIM, CLUSTERS)
        s = c.vectors[:200] @ c.vectors.T
        s[np.arange(200), np.arange(200)] = -1
        return float(np.median(s.max(axis=1)))

    # A photo library's bursts: most items have a near-copy; the clustered corpus does not.
    assert nearest_cos("bursts") > 0.9 > nearest_cos("clusters")
    topics = world("topics:mixed").make_corpus(N, 2, DIM, CLUSTERS)
    sizes = np.sort(topics.cluster_sizes)[::-1]
    assert sizes[:6].sum() > 0.6 * N  # a few huge topics hold most of it


def test_world_names_resolve_and_bad_ones_say_why() -> None:
    assert len(world_names()) == len(CORPORA) * len(DWELLS) >= 4 * 6
    assert world("flat").name == "clusters:threshold"
    assert world("manifold:speed:niche").tastes == ("niche",)
    for bad in ("clusters", "nope:mixed", "clusters:nope", "clusters:mixed:nope"):
        with pytest.raises(UnknownWorld):
            world(bad)


def test_dwell_behaviours_change_the_users() -> None:
    corpus = world("clusters:mixed").make_corpus(N, 3, DIM, CLUSTERS)
    flat = world("clusters:threshold").make_users("niche", corpus, 4, seed=1)
    assert all(u.graded == 0.0 for u in flat)
    speed = world("clusters:speed").make_users("niche", corpus, 30, seed=1)
    base = [u.base_ms for u in speed]
    assert max(base) / min(base) > 4
    drift = world("clusters:mixed").make_users("drift", corpus, 5, seed=1)
    assert all(u.switch_at is not None and u.switch_at < 100 for u in drift)


def test_satiation_lowers_the_dwell_on_near_copies() -> None:
    corpus = world("bursts:satiation").make_corpus(N, 4, DIM, CLUSTERS)
    u = world("bursts:satiation").make_users("niche", corpus, 1, seed=0)[0]
    u.noiseless = True
    rng = np.random.default_rng(0)
    x = corpus.vectors[0]
    first = u.dwell_ms(x, rng, t=0)
    again = u.dwell_ms(x, rng, t=1)
    assert again == pytest.approx(first * u.satiation)
    u.reset()
    assert u.dwell_ms(x, rng, t=0) == pytest.approx(first)


def test_the_known_model_ceiling_finds_a_narrow_taste() -> None:
    w = world("clusters:lognormal")
    corpus = w.make_corpus(N, 5, DIM, CLUSTERS)
    users = w.make_users("niche", corpus, 3, seed=0)
    others = w.make_users("niche", corpus, 40, seed=99)
    caps = []
    for i, u in enumerate(users):
        tr = ceiling_run(corpus, u, i, others, horizon=40, batch=5, seed=i)
        e = Truth(u, corpus)(0)
        best = float(np.sort(e)[::-1][:40].mean())
        caps.append((tr.expected.mean() - e.mean()) / (best - e.mean()))
        assert tr.policy == "ceiling" and tr.repeats == 0
    assert float(np.mean(caps)) > 0.3, caps


def test_the_ceiling_does_not_know_where_a_drifting_taste_goes() -> None:
    from recommender.sim.ceiling import KnownModel, hypotheses_for

    w = world("clusters:lognormal")
    corpus = w.make_corpus(N, 6, DIM, CLUSTERS)
    user = w.make_users("drift", corpus, 1, seed=0)[0]
    others = w.make_users("drift", corpus, 30, seed=99)
    model = KnownModel(user, corpus, hypotheses_for(user, others))
    s = user.switch_at
    assert s is not None
    rng = np.random.default_rng(0)
    truth = Truth(user, corpus)
    for t in range(s):  # the first taste's favourites: its posterior finds it
        item = int(np.argsort(-truth(0))[t])
        model.add(item, t, user.dwell_ms(corpus.vectors[item], rng, t=t))
    prior = 1.0 / 31  # the user's own taste among 30 others'
    assert model.probs(0)[0] > 5 * prior
    # ... and says nothing about the taste after the switch: that is still the prior.
    np.testing.assert_allclose(model.probs(s), prior)
    for k in range(40):
        t = s + k
        item = int(np.argsort(-truth(t))[k])
        model.add(item, t, user.dwell_ms(corpus.vectors[item], rng, t=t))
    assert model.probs(s)[0] > 5 * prior


def test_the_world_summary_reads_capture_ceiling_and_leaders() -> None:
    from recommender.sim.bench import BenchConfig, summarise, world_table, worlds_summary
    from recommender.sim.runner import Trace

    def trace(policy: str, model: str, level: float, first: int | None) -> Trace:
        return Trace(policy=policy, model=model, user=0, expected=np.full(100, 1.0 + level),
                     baseline=np.ones(100), first_like=first, repeats=0, update_ms=[0.2],
                     recommend_ms=[5.0])

    levels = {"oracle": (1.0, 1.0), "sumo": (0.5, 0.02), "random": (0.0, 0.01),
              "ceiling": (0.8, 0.04)}  # (niche, broad) capture
    firsts = {"oracle": 1, "sumo": 10, "random": 50, "ceiling": 20}
    traces = [trace(p, m, lv[k], firsts[p])
              for p, lv in levels.items() for k, m in enumerate(("niche", "broad"))]
    cfg = BenchConfig(world="flat", models=["niche", "broad"], policies=["sumo", "random"],
                      horizon=100)
    result = summarise(cfg, traces)
    row = worlds_summary([result]).splitlines()[-1]
    # mean sumo (0.5 + 0.02) / 2, ceiling (0.8 + 0.04) / 2; broad is contested by nobody
    assert row.startswith("| flat | 0.26 | 0.42 | 0.62 | 10 / 20 / 50 | 1 of 1 | 0 |"), row
    assert "| niche | 0.50 | 0.80 | 0.62 | random 0.00 | 10 / 20 / 50 | 0 |" in world_table(result)


def test_first_like_medians_count_users_who_never_liked_anything() -> None:
    from recommender.sim.bench import BenchConfig, summarise
    from recommender.sim.runner import Trace

    def trace(policy: str, user: int, first: int | None) -> Trace:
        return Trace(policy=policy, model="niche", user=user, expected=np.ones(100),
                     baseline=np.ones(100), first_like=first, repeats=0, update_ms=[0.2],
                     recommend_ms=[5.0])

    firsts = {"random": [4, None, None], "sumo": [30, 40, None], "oracle": [1, 1, 1]}
    traces = [trace(p, u, f) for p, fs in firsts.items() for u, f in enumerate(fs)]
    cfg = BenchConfig(world="flat", models=["niche"], policies=["sumo", "random"], horizon=100)
    by = {s["policy"]: s for s in summarise(cfg, traces)["summaries"]}
    # One lucky random user is not random picks' median: the median user never liked one.
    assert by["random"]["first_like_median"] is None and by["random"]["never_liked"] == 2
    assert by["sumo"]["first_like_median"] == 40 and by["sumo"]["never_liked"] == 1

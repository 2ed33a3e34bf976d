"""The simulator: CLIP-like corpora, realistic simulated users, and the benchmark itself."""

from __future__ import annotations

import json
from itertools import takewhile
from pathlib import Path

import numpy as np
import pytest

from indexer.store.base import Hit
from indexer.store.edge import EdgeStore
from recommender.sim.corpus import load_corpus, make_corpus
from recommender.sim.runner import Truth, run_user
from recommender.sim.users import UserModel, make_users
from recommender.state import UserState
from sumo.cli import main


@pytest.fixture(scope="module")
def corpus():  # type: ignore[no-untyped-def]
    return make_corpus(20000, dim=128, clusters=60, seed=5)


def test_corpus_is_clip_like(corpus) -> None:  # type: ignore[no-untyped-def]
    x = corpus.vectors
    assert x.dtype == np.float32 and x.shape == (20000, 128)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(x), (2, 3000))
    cos = np.sum(x[i] * x[j], axis=1)
    same = corpus.labels[i] == corpus.labels[j]
    # A shared cone: unrelated items are far from orthogonal, as with CLIP.
    assert 0.25 < float(cos[~same].mean()) < 0.6
    assert float(cos[same].mean()) > float(cos[~same].mean()) + 0.2
    sizes = corpus.cluster_sizes
    assert sizes.max() > 5 * np.median(sizes)  # a few big concepts, a long tail


def test_corpus_is_deterministic_and_holes_are_empty() -> None:
    a = make_corpus(3000, dim=32, clusters=20, seed=1, holes=(3, 7))
    b = make_corpus(3000, dim=32, clusters=20, seed=1, holes=(3, 7))
    assert np.array_equal(a.vectors, b.vectors) and a.ids == b.ids
    assert a.holes == (3, 7) and a.centers.shape == (20, 32)
    assert not np.isin(a.labels, [3, 7]).any()
    assert a.cluster_sizes[3] == 0 and a.cluster_sizes[2] > 0


@pytest.mark.parametrize("model", [m.value for m in UserModel])
def test_user_models_are_calibrated_and_heavy_tailed(model: str, corpus) -> None:  # type: ignore[no-untyped-def]
    users = make_users(model, corpus, 6, seed=3)
    rng = np.random.default_rng(0)
    for u in users:
        liked = float(u.liked(corpus.vectors).mean())
        if model == "niche":
            assert liked < 0.01
        elif model == "broad":
            assert liked > 0.04
        e = u.expected_dwell_ms(corpus.vectors)
        assert e.max() > 1.8 * np.median(e)  # taste matters...
        sample = np.array([u.dwell_ms(corpus.vectors[k], rng, t=0) for k in range(400)])
        assert (sample > 0).all()
        assert np.median(sample) < sample.mean()  # ...but dwell is heavy-tailed and noisy
    if model == "drift":
        u = users[0]
        assert u.switch_at is not None
        before, after = u.liked(corpus.vectors, 0), u.liked(corpus.vectors, u.switch_at)
        assert (before & after).sum() < 0.5 * before.sum()


def test_users_can_be_planted_in_given_clusters(corpus) -> None:  # type: ignore[no-untyped-def]
    users = make_users("niche", corpus, 4, seed=0, clusters=[5])
    for u in users:
        assert float(u.taste @ corpus.centers[5]) > 0.9


def test_sumo_beats_random_and_never_repeats(tmp_path: Path) -> None:
    corpus = make_corpus(4000, dim=64, clusters=30, seed=2)
    with EdgeStore(tmp_path / "s") as store:
        load_corpus(store, corpus)
        users = make_users("broad", corpus, 4, seed=1)
        caps = {"sumo": [], "random": []}  # type: dict[str, list[float]]
        for i, u in enumerate(users):
            oracle = run_user(store, corpus, u, i, "oracle", horizon=100, batch=5, seed=i)
            for p in caps:
                tr = run_user(store, corpus, u, i, p, horizon=100, batch=5, seed=i)
                assert tr.repeats == 0
                caps[p].append(tr.capture(oracle, 100))
            assert oracle.capture(oracle, 100) == pytest.approx(1.0)
    assert np.mean(caps["sumo"]) > np.mean(caps["random"]) + 0.2


def test_a_noiseless_user_dwells_exactly_as_expected(corpus) -> None:  # type: ignore[no-untyped-def]
    u = make_users("noisy", corpus, 1, seed=2)[0]
    u.noiseless = True
    rng = np.random.default_rng(0)
    x = corpus.vectors[:200]
    got = np.array([u.dwell_ms(v, rng, t=0, appeal=float(a))
                    for v, a in zip(x, corpus.appeal[:200], strict=True)])
    # No flicks, walk-aways or noise (the noisy model has 20% of the first two): what
    # remains is taste and the item's own appeal.
    assert np.allclose(got, u.expected_dwell_ms(x, corpus.appeal[:200]))


def test_the_runner_reports_every_batch(tmp_path: Path) -> None:
    corpus = make_corpus(1000, dim=32, clusters=8, seed=3)
    seen: list[tuple[int, int, bool]] = []
    shown: list[str] = []

    def on_batch(state: UserState, hits: list[Hit], t0: int) -> None:
        seen.append((t0, len(hits), state.dwell.count == t0 + len(hits)))
        shown.extend(h.id for h in hits)

    with EdgeStore(tmp_path / "s") as store:
        load_corpus(store, corpus)
        u = make_users("broad", corpus, 1, seed=0)[0]
        trace = run_user(store, corpus, u, 0, "sumo", horizon=12, batch=5, seed=0,
                         on_batch=on_batch)
    # After each batch's feedback: where it started, its size, the state already updated.
    assert seen == [(0, 5, True), (5, 5, True), (10, 2, True)]
    # Every view is recorded in order, with the dwell the user gave it.
    assert [corpus.ids[j] for j, _ in trace.views] == shown
    assert all(d > 0 for _, d in trace.views)


def test_truth_switches_with_drift(corpus) -> None:  # type: ignore[no-untyped-def]
    u = make_users("drift", corpus, 1, seed=4)[0]
    truth = Truth(u, corpus)
    assert u.switch_at is not None
    assert not np.array_equal(truth(0), truth(u.switch_at))


def test_bench_quick_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "recommend", "--quick", "--out", str(tmp_path),
                 "--policies", "sumo,random,lints,qdrant-feedback"]) == 0
    out = capsys.readouterr().out
    assert "Taste capture" in out and "| sumo |" in out
    assert "sumo beside the known-model ceiling" in out
    result = json.loads((tmp_path / "recommend-default.json").read_text())
    assert {s["policy"] for s in result["summaries"]} >= {"oracle", "sumo", "random", "lints",
                                                          "ceiling"}
    assert all(s["repeats"] == 0 for s in result["summaries"])
    assert result["perf"]["sumo_state_bytes_max"] <= 16 * 1024
    assert (tmp_path / "recommend-default.png").stat().st_size > 10_000
    # The saved results reprint the same tables without running anything.
    lines = out[out.index("| taste | sumo T=100"):].splitlines()
    world_table = "\n".join(takewhile(lambda line: line.startswith("|"), lines))
    assert main(["bench", "recommend", "--tables", str(tmp_path / "recommend-default.json")]) == 0
    assert world_table in capsys.readouterr().out
    assert main(["bench", "recommend", "--tables", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().out


def test_capture_over_a_window_of_impressions() -> None:
    from recommender.sim.runner import Trace

    def trace(expected: list[float]) -> Trace:
        return Trace(policy="p", model="m", user=0, expected=np.asarray(expected),
                     baseline=np.ones(len(expected)), first_like=None, repeats=0)

    oracle, policy = trace([3.0, 3.0, 3.0, 3.0]), trace([1.0, 1.0, 2.0, 3.0])
    assert policy.capture(oracle, 4) == pytest.approx(0.375)  # (1.75-1) / (3-1)
    assert policy.capture(oracle, 4, start=2) == pytest.approx(0.75)  # (2.5-1) / (3-1)
    assert policy.capture(oracle, 2) == 0.0

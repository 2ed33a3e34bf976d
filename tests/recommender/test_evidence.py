"""The regression of log dwell on each region's interest, on hand-made geometries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recommender.policies import evidence
from recommender.policies.evidence import RegionEvidence, interest
from recommender.regions import RegionMap
from recommender.state import UserState

DIM = 16


def _map(k: int = 4) -> RegionMap:
    # k orthogonal regions; an item at cosine 0.9 of a centre is one of its favourites.
    cent = np.eye(k, DIM, dtype=np.float32)
    return RegionMap(centroids=cent, top=np.full(k, 0.9, np.float32),
                     median=np.zeros(k, np.float32), items=1000, version="hand-made")


def _near(r: int, rng: np.random.Generator, cos: float = 0.95) -> np.ndarray:
    noise = rng.standard_normal(DIM).astype(np.float32)
    noise[r] = 0.0
    noise *= np.sqrt(1 - cos**2) / np.linalg.norm(noise)
    v = noise.copy()
    v[r] = cos
    return v


def _user(m: RegionMap, liked: int, base_ms: float, rng: np.random.Generator,
          views: int = 40) -> RegionEvidence:
    """A user who looks ~4.5x longer at region ``liked`` than elsewhere, lognormal noise."""
    ev = RegionEvidence(m)
    for t in range(views):
        r = t % m.size
        lift = 1.5 if r == liked else 0.0
        ev.add(_near(r, rng), base_ms * float(np.exp(lift + 0.8 * rng.standard_normal())))
    return ev


def test_interest_runs_from_unrelated_to_favourite() -> None:
    m = _map()
    i = interest(m, np.asarray([[0.0, 0.45, 0.9, 1.0]], np.float32).T @ np.ones((1, 4)))
    assert i[0, 0] < 0.05 and 0.3 < i[1, 0] < 0.6 and i[2, 0] > 0.85
    assert np.all(np.diff(i[:, 0]) > 0)


@pytest.mark.parametrize("base_ms", [400.0, 2000.0, 8000.0])
def test_slow_readers_and_fast_scrollers_are_both_understood(base_ms: float) -> None:
    m = _map()
    post = _user(m, liked=2, base_ms=base_ms, rng=np.random.default_rng(1)).posterior()
    assert int(np.argmax(post.log_odds)) == 2
    # Among places (four orthogonal regions: "near e2" and "along e2" look much alike here,
    # so the direction hypothesis keeps a share).
    assert post.probs[2] / post.probs.sum() > 0.95
    # The winning line fits this user's own typical dwell and lift, on no shared scale.
    assert post.a[2] == pytest.approx(np.log(base_ms / 2000.0), abs=0.45)
    assert post.g[2] == pytest.approx(1.5, abs=0.6)


def test_a_walk_away_does_not_outvote_a_consistent_preference() -> None:
    m = _map()
    rng = np.random.default_rng(2)
    ev = RegionEvidence(m)
    for _ in range(3):  # three clearly longer looks at region 1
        ev.add(_near(1, rng), 9000.0)
        for r in (0, 2, 3):
            ev.add(_near(r, rng), 2000.0)
    ev.add(_near(3, rng), 3_000_000.0)  # 50 minutes: the phone was left on the table
    assert int(np.argmax(ev.posterior().log_odds)) == 1


def _flicked_preference() -> RegionEvidence:
    """Three clearly longer looks at region 1 then two flicks (120 ms) past its items."""
    m = _map()
    rng = np.random.default_rng(4)
    ev = RegionEvidence(m)
    for _ in range(3):
        ev.add(_near(1, rng), 9000.0)
        for r in (0, 2, 3):
            ev.add(_near(r, rng), 2000.0)
    for _ in range(2):
        ev.add(_near(1, rng), 120.0)
    return ev


def test_flicks_do_not_outvote_a_consistent_preference(monkeypatch: pytest.MonkeyPatch) -> None:
    assert int(np.argmax(_flicked_preference().posterior().log_odds)) == 1
    # A flick counts as one typical look's distance below (BELOW_TYPICAL): far enough to
    # say "not this", no further. Taken at face value, the two flicks would win.
    monkeypatch.setattr(evidence, "BELOW_TYPICAL", 100.0)
    assert int(np.argmax(_flicked_preference().posterior().log_odds)) != 1


def test_evidence_fades_so_a_new_taste_is_found() -> None:
    m = _map()
    rng = np.random.default_rng(3)
    ev = _user(m, liked=0, base_ms=2000.0, rng=rng, views=80)
    assert int(np.argmax(ev.posterior().log_odds)) == 0
    for t in range(160):
        r = t % m.size
        ev.add(_near(r, rng), 2000.0 * float(np.exp((1.5 if r == 3 else 0.0)
                                                    + 0.8 * rng.standard_normal())))
    assert int(np.argmax(ev.posterior().log_odds)) == 3


def test_expected_dwell_prefers_the_likely_region_then_what_likely_ones_share() -> None:
    m = _map()
    rng = np.random.default_rng(4)
    ev = _user(m, liked=1, base_ms=2000.0, rng=rng)
    post = ev.posterior()
    vals = ev.value(post, np.stack([_near(r, rng) for r in range(4)]))
    assert int(np.argmax(vals)) == 1 and vals[1] > 2 * np.delete(vals, 1).max()
    # With nothing known, an item between two regions is worth more than either's own
    # favourite only if it interests both: at cosine 0.71 to each it is "related" to both.
    blank = RegionEvidence(m)
    between = np.zeros(DIM, np.float32)
    between[[0, 1]] = np.sqrt(0.5)
    v = blank.value(blank.posterior(), np.stack([_near(0, rng), between]))
    assert v[1] > v[0]


def test_the_sums_round_trip_through_the_user_state() -> None:
    m = _map()
    ev = _user(m, liked=3, base_ms=1500.0, rng=np.random.default_rng(5))
    state = UserState("u", "sumo")
    ev.save(state)
    back = RegionEvidence.load(UserState.from_dict(json.loads(json.dumps(state.to_dict()))), m)
    a, b = ev.posterior(), back.posterior()
    assert back.n == pytest.approx(ev.n, rel=1e-3)
    np.testing.assert_allclose(b.log_odds - b.log_odds.max(), a.log_odds - a.log_odds.max(),
                               atol=0.05)
    # Evidence about another map is no evidence.
    other = RegionMap(m.centroids, m.top, m.median, m.items, version="another")
    assert RegionEvidence.load(state, other).empty


def test_float16_keeps_a_long_history_accurate() -> None:
    # Sums are stored as float16: after hundreds of views the evidence must still rank
    # regions as the exact sums do (the largest sums are ~1/(1 - MEMORY) views).
    m = _map()
    ev = _user(m, liked=0, base_ms=2000.0, rng=np.random.default_rng(6), views=600)
    state = UserState("u", "sumo")
    ev.save(state)
    a, b = ev.posterior(), RegionEvidence.load(state, m).posterior()
    assert ev.n == pytest.approx(1.0 / (1.0 - evidence.MEMORY), rel=0.01)
    np.testing.assert_allclose(b.log_odds - b.log_odds.max(), a.log_odds - a.log_odds.max(),
                               atol=0.5)
    assert np.argmax(a.log_odds) == np.argmax(b.log_odds) == 0


def test_the_lift_is_uncertain_where_nothing_was_shown() -> None:
    # Views only in regions 0 and 1: the lift of 2 and 3 is known no better than its prior
    # (scaled by the noise learned from the dwells, the same for both).
    m = _map()
    ev = RegionEvidence(m)
    rng = np.random.default_rng(4)
    for t in range(40):
        ev.add(_near(t % 2, rng), 2000.0 * float(np.exp(0.3 * rng.standard_normal())))
    post = ev.posterior()
    assert post.g_sd[2] == pytest.approx(post.g_sd[3], rel=0.05)
    assert post.g_sd[0] < 0.75 * post.g_sd[2]


def test_many_candidates_are_valued_as_a_few_are() -> None:
    # Above ROW_BY_ROW rows the similarities come from one matrix product instead.
    m = _map()
    ev = _user(m, liked=1, base_ms=2000.0, rng=np.random.default_rng(6))
    post = ev.posterior()
    rng = np.random.default_rng(7)
    items = np.stack([_near(i % m.size, rng, cos=0.6 + 0.004 * i) for i in range(100)])
    assert len(items) > evidence.ROW_BY_ROW
    np.testing.assert_allclose(ev.value(post, items),
                               np.concatenate([ev.value(post, items[:50]),
                                               ev.value(post, items[50:])]), rtol=1e-5)


def _spread_map(k: int = 24, dim: int = 32) -> RegionMap:
    cent = np.random.default_rng(5).standard_normal((k, dim)).astype(np.float32)
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    return RegionMap(centroids=cent, top=np.full(k, 0.9, np.float32),
                     median=np.zeros(k, np.float32), items=1000, version=f"spread-{k}-{dim}")


def _views(m: RegionMap, taste: object, n: int, seed: int) -> RegionEvidence:
    """``n`` random items rated by ``taste(x) -> log-dwell lift``, lognormal noise 0.8."""
    rng = np.random.default_rng(seed)
    ev = RegionEvidence(m)
    for _ in range(n):
        x = rng.standard_normal(m.centroids.shape[1]).astype(np.float32)
        x /= np.linalg.norm(x)
        ev.add(x, 2000.0 * float(np.exp(taste(x) + 0.8 * rng.standard_normal())))  # type: ignore[operator]
    return ev


def test_a_taste_along_a_direction_is_found_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _spread_map()
    d = evidence.linear_basis(m).axes[0].astype(np.float64)
    d /= np.linalg.norm(d)

    def taste(x: np.ndarray) -> float:
        return 1.5 * float(np.clip(x @ d / 0.3, -1, 1))

    # Looks far below typical count only BELOW_TYPICAL below it, so the half of this taste
    # that is dislike says less than the half that is liking: 200 views (120 without).
    ev = _views(m, taste, 200, seed=1)
    post = ev.posterior()
    assert post.linear > 0.5 > float(post.probs.max())
    u = ev.direction(post)
    assert u is not None and float(u @ d) > 0.8
    # The expected dwell grows along the direction.
    vals = ev.value(post, np.stack([d, -d]).astype(np.float32))
    assert vals[0] > 3 * vals[1]
    monkeypatch.setattr(evidence, "BELOW_TYPICAL", 100.0)  # no floor
    early = _views(m, taste, 120, seed=1).posterior()
    assert early.linear > 0.5 > float(early.probs.max())


def test_a_taste_for_a_place_is_not_taken_for_a_direction() -> None:
    m = _spread_map()
    # Views spread over every place, as a search shows them (random items are rarely near
    # any one place); the user looks longer at place 3's.
    ev = RegionEvidence(m)
    rng = np.random.default_rng(3)
    for t in range(120):
        x = m.centroids[t % m.size] + 0.04 * rng.standard_normal(m.centroids.shape[1])
        x = (x / np.linalg.norm(x)).astype(np.float32)
        ev.add(x, 2000.0 * float(np.exp(1.5 * (t % m.size == 3) + 0.8 * rng.standard_normal())))
    post = ev.posterior()
    assert int(np.argmax(post.probs)) == 3 and post.linear < 0.1


def test_the_direction_sums_round_trip_and_older_states_go_without() -> None:
    m = _spread_map()
    ev = _views(m, lambda x: float(x[0]), 30, seed=4)
    state = UserState("u", "sumo")
    ev.save(state)
    back = RegionEvidence.load(UserState.from_dict(json.loads(json.dumps(state.to_dict()))), m)
    assert back.linear
    np.testing.assert_allclose(back.sff, ev.sff, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(back.syf, ev.syf, rtol=1e-5, atol=1e-5)
    assert back.posterior().linear == pytest.approx(ev.posterior().linear, rel=1e-3)
    # Evidence saved before the hypothesis existed: its views cannot be replayed.
    del state.data["rl"]
    older = RegionEvidence.load(state, m)
    assert not older.linear and older.posterior().linear == 0.0


def test_a_phone_put_down_says_nothing_about_the_image() -> None:
    m, rng = _map(), np.random.default_rng(7)
    ev = _user(m, liked=2, base_ms=1500.0, rng=rng)
    before = ev.posterior()
    # Twenty-minute "looks" at region 0: left out, not the strongest like there is.
    for _ in range(5):
        ev.add(_near(0, rng), 20 * 60_000.0)
    after = ev.posterior()
    np.testing.assert_array_equal(after.log_odds, before.log_odds)
    assert int(np.argmax(after.log_odds)) == 2
    # A long but plausible look (a minute) still counts.
    ev.add(_near(0, rng), 60_000.0)
    assert not np.array_equal(ev.posterior().log_odds, before.log_odds)

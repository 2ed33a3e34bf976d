"""SUMO: a target in CLIP space, pulled toward what the user looks at longer.

Three policies share the idea from the seed project (Aveygo/SUMO, optimizer.py and algo.py):

``sumo-seed`` is the seed, literally: each view is paired with the previous one, the longer
viewed wins, and the gradient (winner − loser, scaled by the "winner bonus"
1 − e^(−mean(last 16 gaps)·gap)) drives per-coordinate Adam (lr 0.05, both decays 0.8, no
bias correction). New content is a random item slerped toward the target by 0.2–0.5.
Adam's per-coordinate step is ~lr whatever the gradient's size, and unit-norm 512-d
coordinates are ~0.044, so each step moves the target by more than its own length: in a
normalised CLIP space the seed wanders at chance. It is kept to show exactly that.

``sumo-target`` makes the idea work on the sphere:
- dwell is scored per user, robustly (``recommender.dwell``), so gaps mean the same for a
  slow reader and a fast scroller, and outliers cannot dominate;
- every new view is paired with each view in a recent window (not just the previous
  one; inside pairs scores are clipped at ±2, so one walk-away or flick cannot win or lose
  every pair it enters by a landslide), with a pairwise logistic (Bradley–Terry) loss,
  so pairs the target already orders correctly stop pulling and surprises pull hardest;
  the seed's winner bonus weights pairs by how decisive their gap is;
- Riemannian Adam on the unit sphere (``_step``): a tangent first moment and one scalar
  second moment, so a step is ~lr radians while pairs agree and shrinks when they
  disagree; lr decays with evidence from 0.35 to 0.05 so the target settles instead of
  jittering; it stays on the sphere;
- confidence is the target's own held-out accuracy on new pairs (judged before learning
  from them): it sets how much of each batch exploits and how far exploration is pulled
  toward the target, and it falls when the taste drifts, so exploration comes back;
- exploration is deliberate: farthest-point picks over random pools (covers the corpus
  instead of re-sampling the biggest clusters), slerped toward the target; exploitation
  uses Qdrant's MMR query, so one batch is never five near-duplicates.
State: target (f32), Adam's first moment (f16), a 12-view window (int8), a few scalars: ~13 KB.

``sumo``, the default, is ``sumo-target`` plus a Bayesian search over the corpus' regions
that decides where to look (``SumoPolicy`` below, ``recommender.policies.evidence``): the
optimizer refines a point, the search finds the place.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from indexer.store.base import Hit, Vector
from recommender.centres import CentreLists
from recommender.centres import lists_for as centre_lists
from recommender.exclusion import excluding
from recommender.policies.base import Policy, Scored, slerp
from recommender.policies.evidence import LOG_REF, RegionEvidence, interest
from recommender.regions import RegionMap, regions_for
from recommender.state import (
    UserState,
    decode_f16,
    decode_f32,
    decode_unit_i8,
    encode_f16,
    encode_f32,
    encode_unit_i8,
    unit,
)

# --- sumo ---------------------------------------------------------------------------------
WINDOW = 12  # recent views each new view is compared with
PAIR_Z = 2.0  # dwell scores beyond this count as this much in pairs
MIN_GAP = 0.5  # dwell-score gaps below this are noise, not preference
BT_SCALE = 8.0  # logistic loss sharpness on cosine differences (CLIP margins are ~0.1-0.3)
BETA1 = 0.5  # Adam's first moment: short, a batch of pairs is already an average
BETA2 = 0.8  # its (scalar) second moment: remembers the last ~5 batches' gradient sizes
LR_START = 0.35  # radians per step while pairs agree and nothing is known yet...
LR_END = 0.05  # ...down to this (never zero: tastes drift)
LR_HALF_LIFE = 10.0  # informative updates until the step is halfway down
ADAM_EPS = 1e-8
MAX_STEP = 0.8  # radians
REPEL = 0.3  # weight of moving away from a loser, relative to moving toward a winner
ACC_DECAY = 0.85  # memory of the held-out pair accuracy
EXPLORE_MIN, EXPLORE_MAX = 0.1, 0.5  # share of a batch that explores, by confidence
ACC_MARGIN = 0.05  # pairs the target separates by less than this are not a test of it
PULL_MIN, PULL_MAX = 0.25, 0.7  # how far explored items are slerped toward the target
MMR_DIVERSITY = 0.1
VERIFY_Z = 1.5  # a view this far above the user's norm deserves a second look nearby...
VERIFY_COS = 0.9  # ...unless the target is already there


class SumoTargetPolicy(Policy):
    name = "sumo-target"
    description = "SUMO's target optimiser alone (pairwise logistic, spherical Adam, "
    "confident exploration)"

    # --- state helpers -------------------------------------------------------------------
    @staticmethod
    def _window(state: UserState) -> list[tuple[Vector, float]]:
        return [(decode_unit_i8(v), float(z)) for v, z in state.data.get("win", [])]

    @staticmethod
    def confidence(state: UserState) -> float:
        """0 with no evidence or a target that orders pairs at chance; 1 when reliable."""
        acc = float(state.data.get("acc", 0.5))
        checks = float(state.data.get("checks", 0))
        return float(np.clip((acc - 0.5) * 2.5, 0.0, 1.0) * (1.0 - math.exp(-checks / 6.0)))

    # --- learning ------------------------------------------------------------------------
    def update(self, state: UserState, batch: Sequence[Scored]) -> None:
        if not batch:
            return
        d = state.data
        window = self._window(state)
        target = state.target
        dim = batch[0].vector.shape[0]
        grad = np.zeros(dim, dtype=np.float64)
        acc = float(d.get("acc", 0.5))
        gap_mean = float(d.get("gap", 1.0))
        pairs = 0
        checks = 0
        for o in batch:
            for x, z in window:
                # Clipped again for pairs: a walk-away or a flick is one view, and must
                # not outweigh a plain "watched longer" in every pair it enters.
                gap = min(max(o.z, -PAIR_Z), PAIR_Z) - min(max(z, -PAIR_Z), PAIR_Z)
                if abs(gap) < MIN_GAP:
                    continue
                win, lose = (o.vector, x) if gap > 0 else (x, o.vector)
                diff = win - lose
                # The seed's winner bonus, on a per-user scale: decisive gaps count more.
                bonus = 1.0 - math.exp(-abs(gap) / gap_mean)
                gap_mean = 0.9 * gap_mean + 0.1 * abs(gap)
                if target is not None:
                    margin = float(np.dot(target, diff))
                    # Held-out check of the target, on pairs it tells apart clearly (two
                    # items equally near it are a coin flip whatever its quality).
                    if abs(margin) > ACC_MARGIN:
                        acc = ACC_DECAY * acc + (1 - ACC_DECAY) * (1.0 if margin > 0 else 0.0)
                        checks += 1
                    pull = 1.0 / (1.0 + math.exp(BT_SCALE * margin))  # -dloss/dmargin
                else:
                    pull = 0.5
                # Pull toward the winner's location more than away from the loser's:
                # the target stays among items (a place in CLIP space the gap report can
                # read), where a sum of differences would drift off into directions no
                # image occupies.
                if target is not None:
                    grad += bonus * pull * ((win - target) - REPEL * (lose - target))
                else:
                    grad += bonus * pull * diff
                pairs += 1
            window.append((o.vector, o.z))
        window = window[-WINDOW:]

        if target is None:
            # First signal: aim at the views weighted by how much they were liked.
            zs = np.asarray([z for _, z in window])
            w = np.exp(zs - zs.max())
            target = unit(np.sum(w[:, None] * np.stack([x for x, _ in window]), axis=0))
        if pairs:
            target = self._step(d, target, grad, pairs)
        state.target = target
        d["win"] = [[encode_unit_i8(x), round(z, 3)] for x, z in window]
        d["acc"] = round(acc, 4)
        d["checks"] = int(d.get("checks", 0)) + checks
        d["gap"] = round(gap_mean, 4)

    def _step(self, d: dict[str, Any], target: Vector, grad: np.ndarray, pairs: int) -> Vector:
        """One Riemannian Adam step on the unit sphere (Becigneul and Ganea 2019).

        The gradient, summed over the batch's pairs, is projected onto the target's tangent
        plane; its first moment is a tangent vector and its second moment one scalar (the
        squared norm), both bias-corrected. The step is ``lr * m / sqrt(v)``: about ``lr``
        radians while the pairs keep pulling the same way, much less when batches disagree
        (their tangent gradients cancel in ``m`` but not in ``v``). One scalar ``v``, not one
        per coordinate: per-coordinate scaling is what sends the seed wandering. After the
        step, the first moment is carried onto the new tangent plane.
        """
        g_tan = grad - np.dot(grad, target) * target  # only the tangent part moves a unit vector
        m = decode_f16(str(d["m"])).astype(np.float64) if "m" in d else np.zeros_like(g_tan)
        v = float(d.get("v", 0.0))
        n = float(d.get("n", 0.0)) + 1.0
        m = BETA1 * m + (1 - BETA1) * g_tan
        v = BETA2 * v + (1 - BETA2) * float(np.dot(g_tan, g_tan))
        m_hat = m / (1 - BETA1**n)
        v_hat = v / (1 - BETA2**n)
        lr = LR_END + (LR_START - LR_END) * 0.5 ** (n / LR_HALF_LIFE)
        step = lr * m_hat / (math.sqrt(v_hat) + ADAM_EPS)
        angle = float(np.linalg.norm(step))
        if angle > MAX_STEP:
            step *= MAX_STEP / angle
            angle = MAX_STEP
        # The exponential map: ``angle`` radians along the great circle the step points along.
        if angle > 1e-12:
            new = unit(math.cos(angle) * target + math.sin(angle) * (step / angle))
        else:
            new = target
        m = m - np.dot(m, new) * new  # the first moment, carried onto the new tangent plane
        d.update(m=encode_f16(m.astype(np.float32)), v=float(f"{v:.6g}"), n=n)
        return new

    def seed(self, state: UserState, vectors: Sequence[Vector]) -> None:
        super().seed(state, vectors)
        # A warm start is a hint, not evidence: confidence still has to be earned.

    # --- choosing ------------------------------------------------------------------------
    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        if limit <= 0:
            return []
        window = self._window(state)  # int8 + base64: decode once per request
        avoid = [x for x, _ in window]
        target = state.target
        if target is None:  # cold start: cover the corpus
            return [h for h, _ in self.spread_items(limit, exclude, avoid)]
        c = self.confidence(state)
        # Stochastic rounding: a batch of 5 at 12% exploration still explores sometimes.
        share = EXPLORE_MAX - (EXPLORE_MAX - EXPLORE_MIN) * c
        n_explore = int(np.floor(limit * share + self.rng.random()))
        n_exploit = max(1, limit - n_explore)
        exploit: list[Hit] = []
        best_x, best_z = max(window, key=lambda w: w[1]) if window else (target, 0.0)
        if best_z >= VERIFY_Z and float(best_x @ target) < VERIFY_COS and n_exploit > 1:
            # A standout view the target has not caught up with yet: show its nearest
            # neighbour. A second long dwell confirms the region; a short one was noise.
            exploit += self.store.search(best_x, 1, exclude=exclude)
        exploit += self._around(target, n_exploit - len(exploit),
                                excluding(exclude, {h.id for h in exploit}), pool=n_exploit)
        taken = {h.id for h in exploit}
        n_explore = limit - len(exploit)
        if n_explore <= 0:
            return exploit
        excl = excluding(exclude, taken)
        pull = PULL_MIN + (PULL_MAX - PULL_MIN) * c
        spread = self.spread_items(n_explore, excl, avoid)
        queries = [slerp(x, target, pull) for _, x in spread]
        explore = self.nearest_distinct(queries, excl, taken)
        return exploit + explore

    def _around(self, target: Vector, n: int, exclude: Collection[str], *, pool: int
                ) -> list[Hit]:
        """``n`` unseen items around ``target`` by Qdrant's MMR query, whose candidates are
        the nearest ``max(20, 4 * pool)``."""
        if n <= 0:
            return []
        if n == 1:  # MMR's first pick is the plain nearest neighbour: skip its overhead
            return self.store.search(target, 1, exclude=exclude)
        return self.store.search_mmr(target, n, diversity=MMR_DIVERSITY,
                                     candidates=max(20, 4 * pool), exclude=exclude)


# --- sumo: the target optimiser plus a Bayesian search over the corpus' regions ----------
CANDIDATES = 10  # items per query point the expected dwell chooses from
CENTRES = 1  # likeliest regions whose centres are queried besides the mean: one query each
# The likeliest mode of the posterior (its likeliest region and every region under which
# that one's centre is of interest, I_h >= MODE_REACH) gets a query around the blend of its
# own centres once it holds MODE_MASS of the posterior, unless that blend lies within
# SAME_COS of the whole posterior's (the same items). Set beforehand, not tuned
# (docs/research.md).
MODE_REACH = 0.5
MODE_MASS = 0.05
SAME_COS = 0.98
DUPLICATE_COS = 0.95  # one batch shows no two items this alike
# Until a region's lift is credibly there (its lower PROBE_SD bound under PROBE_LIFT), one slot
# of a batch shows the item nearest the likeliest region's centre (a clean test of the
# leading guess: neutral dwells on items several regions share rule out little), and
# COVER slots show the item nearest the centre of the region the views so far have
# touched least (systematic coverage: when no dwell points anywhere, the search walks the
# collection region by region instead of circling the middle of it).
PROBE_LIFT = 0.5
PROBE_SD = 2.0  # 3 traded narrow tastes for noisy ones on the flat world (research.md)
COVER = 1  # 2 won on the tuning worlds and lost on the held-out ones (docs/research.md)
COVER_FROM = 3  # the smallest request that gets cover slots besides the probe
SEED_LIFT = 1.5  # a warm-start vector counts as a view this much (log dwell) above typical
LINEAR_QUERY = 0.05  # the direction hypothesis gets a query of its own above this posterior
# Search beam (HNSW ef) of the queries composed per request, the posterior's blend of
# centres and a broad taste's direction: far from any item, the graph finds 0.4-0.8 of
# their true neighbours at the store's 256 (research/bench_query_recall.py); 1024 found
# no more capture than 512 and cost more (docs/research.md). When the likeliest mode's
# blend is queried too, both it and the whole blend are searched at the store's own beam.
WIDE_EF = 512


class SumoPolicy(SumoTargetPolicy):
    """``sumo-target``'s optimiser, and a Bayesian search deciding where to look.

    The optimiser refines a target from pairs, but it can only refine what it has seen:
    from a cold start it hill-climbs from wherever the first long dwells happened to be.
    So the policy also weighs every region of the corpus (``recommender.regions``) as the
    place the user wants, by how well "they look longer the nearer an image is to it"
    explains their dwell times (``recommender.policies.evidence``), and shows the items of
    highest posterior-expected dwell among the unseen items nearest the posterior's mean
    direction, the blend of its likeliest mode's centres (``likeliest_mode``: a narrow taste
    straddles neighbouring regions, where the whole blend is pulled away by the rest of
    the posterior) and the likeliest region's centre and, once "interest grows along a
    direction" is a likely hypothesis (a broad taste, which is no place), along that
    direction. Early on, an item between
    several likely regions is worth more than any one region's, and showing it narrows the
    search; once one region dominates, its items win. Until some region's lift is credible,
    one slot per batch also tests the likeliest region directly, and one the region the
    views have touched least (``PROBE_LIFT``, ``COVER``). A first batch
    with no evidence at all covers the corpus, as ``sumo-target`` does; a warm start counts
    as liked views.
    The target keeps learning (the gap report reads it, and ``sumo-target`` uses it) but
    does not pick items here: as a query point it measured worse than the posterior
    (docs/research.md). A collection too small for a region map is served as
    ``sumo-target``.
    """

    name = "sumo"
    description = "SUMO (target optimiser + Bayesian search over the corpus' regions)"

    def update(self, state: UserState, batch: Sequence[Scored]) -> None:
        super().update(state, batch)
        regions = regions_for(self.store)
        if regions is None or not batch:
            return
        ev = RegionEvidence.load(state, regions)
        for o in batch:
            ev.add(o.vector, o.dwell_ms)
        ev.save(state)

    def seed(self, state: UserState, vectors: Sequence[Vector]) -> None:
        super().seed(state, vectors)
        regions = regions_for(self.store)
        if regions is not None and vectors:
            # A warm start is a hint: each vector counts as one clearly liked view.
            ev = RegionEvidence.load(state, regions)
            for v in vectors:
                ev.add(unit(v), math.exp(LOG_REF + SEED_LIFT))
            ev.save(state)

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        regions = regions_for(self.store)
        if regions is None or limit <= 0:
            return super().recommend(state, limit, exclude)
        ev = RegionEvidence.load(state, regions)
        if ev.empty:
            return super().recommend(state, limit, exclude)
        post = ev.posterior()
        p = post.probs
        likeliest = np.argsort(-p, kind="stable")[:CENTRES]
        top = int(likeliest[0])
        # A taste that is a direction has no place to test or cover.
        direction = ev.direction(post) if post.linear >= LINEAR_QUERY else None
        searching = (limit >= 2 and post.linear < p[top]
                     and post.g[top] - PROBE_SD * post.g_sd[top] < PROBE_LIFT)
        # Around the posterior's mean direction (what likely regions share); around the
        # likeliest regions' centres, so that a region the mean has moved away from is still
        # reached; while searching, around the least-touched regions' centres; and around
        # the likeliest mode's own blend when the whole one lies away from it.
        cover = ([int(r) for r in np.argsort(ev.si + 1e-3 * self.rng.random(regions.size),
                                             kind="stable")[:COVER]]
                 if searching and limit >= COVER_FROM else [])
        centres = [int(r) for r in likeliest] + cover
        blend = unit(p @ regions.centroids)
        mode = likeliest_mode(regions, p)
        if mode is not None and float(mode @ blend) >= SAME_COS:
            mode = None
        results = self._neighbours(
            regions, [blend, *centres, *([] if direction is None else [direction])],
            max(CANDIDATES, 2 * limit), exclude, mode=mode)
        found: dict[str, Hit] = {}
        for hits in results:
            for h in hits:
                found.setdefault(h.id, h)
        cands = [h for h in found.values() if h.vector is not None]
        if not cands:
            return []
        vectors = np.stack([np.asarray(h.vector, np.float32) for h in cands])
        value = ev.value(post, vectors)
        rank = value.copy()
        if searching:
            # The probe first, then the cover picks: ranked above every greedy candidate.
            probes = (results[1], *results[1 + CENTRES:1 + CENTRES + len(cover)])
            tests = [r[0].id for r in probes if r]
            for k, item in enumerate(tests):
                rank[[i for i, h in enumerate(cands) if h.id == item]] = 1e300 / (k + 1)
        return [Hit(id=cands[i].id, score=float(value[i]))
                for i in _distinct(rank, vectors, limit)]

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        """The unseen items nearest each point (a region's index for its centre), with
        vectors, then, given the likeliest mode's blend, those nearest it. Centres come
        from this process's lists where it keeps them (``recommender.centres``); the rest
        go to the store in one call (one round trip to a Qdrant server, one exclusion
        filter), the other composed points with the wide beam unless the mode is asked
        too (the first point, the whole blend, then at the store's)."""
        lists = centre_lists(self.store, regions)
        known = [self._listed(lists, q, limit, exclude) if isinstance(q, int) else None
                 for q in points]
        ask = [q for q, got in zip(points, known, strict=True) if got is None]
        beams: list[int | None] = [None if isinstance(q, int) else WIDE_EF for q in ask]
        if mode is not None:
            # The mode's own query finds what the whole blend's (the first point, never a
            # centre) wider beam would add near it: both at the store's beam cost a little
            # more than the whole one at the wide (1.03-1.07x the engine's time,
            # docs/research.md).
            beams[0] = None
            ask.append(mode)
            beams.append(None)
        searched = iter(self.store.search_many(
            [regions.centroids[q] if isinstance(q, int) else q for q in ask], limit,
            exclude=exclude, with_vectors=True, ef=beams))
        return [got if got is not None else next(searched) for got in known] + list(searched)

    @staticmethod
    def _listed(lists: CentreLists | None, region: int, limit: int,
                exclude: Collection[str]) -> list[Hit] | None:
        """A centre's answer from the lists, or ``None`` to search it instead."""
        return lists.answer(region, limit, exclude) if lists is not None else None

    def warm(self) -> None:
        regions = regions_for(self.store)
        if regions is not None:
            centre_lists(self.store, regions)


def likeliest_mode(regions: RegionMap, probs: np.ndarray) -> Vector | None:
    """The probability-weighted blend of the centres of the posterior's likeliest mode: its
    likeliest region and every region under which that one's centre is of interest. None
    while the mode holds less than ``MODE_MASS``.

    A narrow taste often straddles neighbouring regions; their blend lies where it is,
    while the whole posterior's blend is pulled toward the small shares of every other
    region. Valuing every unseen item instead of the queries' nearest showed what that
    costs at 100k items (docs/research.md)."""
    members = mode_members(regions, probs)
    if float(probs[members].sum()) < MODE_MASS:
        return None
    return unit(probs[members] @ regions.centroids[members])


def mode_members(regions: RegionMap, probs: np.ndarray) -> np.ndarray:
    """Which regions make up the posterior's likeliest mode (a boolean mask): its likeliest
    region and every region under which that one's centre is of interest."""
    top = int(np.argmax(probs))
    members = interest(regions, regions.centroids @ regions.centroids[top]) >= MODE_REACH
    members[top] = True
    return members


def _distinct(value: np.ndarray, vectors: np.ndarray, limit: int) -> list[int]:
    """The ``limit`` best by ``value``, skipping near-duplicates of a better pick (bursts of
    almost the same photo are common in real collections) while others remain."""
    order = [int(i) for i in np.argsort(-value)]
    chosen: list[int] = []
    for i in order:
        if len(chosen) == limit:
            break
        if not chosen or float(np.max(vectors[chosen] @ vectors[i])) < DUPLICATE_COS:
            chosen.append(i)
    chosen += [i for i in order if i not in chosen][:limit - len(chosen)]
    return chosen


# --- sumo-seed ----------------------------------------------------------------------------
SEED_LR = 0.05
SEED_BETAS = (0.8, 0.8)
SEED_GAPS = 16
SEED_EXPLOIT = (0.2, 0.5)


class SumoSeedPolicy(Policy):
    name = "sumo-seed"
    description = "the seed's optimiser, literally (per-coordinate Adam lr 0.05, consecutive pairs)"

    def update(self, state: UserState, batch: Sequence[Scored]) -> None:
        d = state.data
        raw = decode_f32(str(d["t"])) if "t" in d else None
        prev = (decode_unit_i8(str(d["prev"])), float(str(d["prev_s"]))) if "prev" in d else None
        m = decode_f32(str(d["m"])) if "m" in d else None
        v = decode_f32(str(d["v"])) if "v" in d else None
        gaps: list[float] = [float(g) for g in d.get("gaps", [])]  # type: ignore[attr-defined]
        for o in batch:
            secs = o.dwell_ms / 1000.0  # the seed scores raw seconds
            if raw is None:
                raw = o.vector.copy()
            if prev is not None:
                px, ps = prev
                gap = abs(secs - ps)
                gaps = (gaps + [gap])[-SEED_GAPS:]
                sel, ign = (o.vector, px) if secs >= ps else (px, o.vector)
                bonus = 1.0 - math.exp(-float(np.mean(gaps)) * gap)
                g = (bonus * (sel - ign)).astype(np.float32)
                b1, b2 = SEED_BETAS
                m = g * (1 - b1) if m is None else b1 * m + (1 - b1) * g
                v = g * g * (1 - b2) if v is None else b2 * v + (1 - b2) * g * g
                raw = (raw + SEED_LR * m / (np.sqrt(v) + 1e-8)).astype(np.float32)
            prev = (o.vector, secs)
        if raw is None or prev is None:
            return
        d.update(t=encode_f32(raw), prev=encode_unit_i8(prev[0]), prev_s=round(prev[1], 3),
                 gaps=[round(g, 3) for g in gaps])
        if m is not None and v is not None:
            d.update(m=encode_f32(m), v=encode_f32(v))
        state.target = unit(raw)

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        if state.target is None:
            return self.random_items(limit, exclude)
        randoms = self.random_items(limit, exclude)
        items = self.store.retrieve([h.id for h in randoms], with_vectors=True)
        queries = [slerp(unit(it.vector), state.target, float(self.rng.uniform(*SEED_EXPLOIT)))
                   for it in items if it.vector is not None]
        return self.nearest_distinct(queries, exclude, set())

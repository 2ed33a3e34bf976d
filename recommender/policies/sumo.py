"""SUMO: a target in CLIP space, pulled toward what the user looks at longer.

Two variants share the idea from the seed project (Aveygo/SUMO, optimizer.py and algo.py):

``sumo-seed`` is the seed, literally: each view is paired with the previous one, the longer
viewed wins, and the gradient (winner − loser, scaled by the "winner bonus"
1 − e^(−mean(last 16 gaps)·gap)) drives per-coordinate Adam (lr 0.05, both decays 0.8, no
bias correction). New content is a random item slerped toward the target by 0.2–0.5.
Adam's per-coordinate step is ~lr whatever the gradient's size, and unit-norm 512-d
coordinates are ~0.044, so each step moves the target by more than its own length: in a
normalised CLIP space the seed wanders at chance. It is kept to show exactly that.

``sumo`` makes the idea work on the sphere:
- dwell is scored per user, robustly (``recommender.dwell``), so gaps mean the same for a
  slow reader and a fast scroller, and outliers cannot dominate;
- every new view is paired with each view in a recent window (not just the previous
  one), with a pairwise logistic (Bradley–Terry) loss, so pairs the target already orders
  correctly stop pulling and surprises pull hardest; the seed's winner bonus weights pairs
  by how decisive their gap is;
- Adam-style momentum on the tangent plane with a *scalar* second moment, so a step is an
  angle (radians) that shrinks as evidence accumulates; the target stays on the sphere;
- confidence is the target's own held-out accuracy on new pairs (judged before learning
  from them): it sets how much of each batch exploits and how far exploration is pulled
  toward the target, and it falls when the taste drifts, so exploration comes back;
- exploration is deliberate: farthest-point picks over random pools (covers the corpus
  instead of re-sampling the biggest clusters), slerped toward the target; exploitation
  uses Qdrant's MMR query, so one batch is never five near-duplicates.
State: target (f32), momentum (f16), a 12-view window (int8), a few scalars: ~10 KB.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from indexer.store.base import Hit, Store, Vector
from recommender.policies.base import Policy, Scored, slerp
from recommender.state import (
    UserState,
    decode_f32,
    decode_unit_i8,
    encode_f32,
    encode_unit_i8,
    unit,
)

# --- sumo ---------------------------------------------------------------------------------
WINDOW = 10  # recent views each new view is compared with
MIN_GAP = 0.5  # dwell-score gaps below this are noise, not preference
BT_SCALE = 8.0  # logistic loss sharpness on cosine differences (CLIP margins are ~0.1-0.3)
BETA1, BETA2 = 0.7, 0.9  # momentum and (scalar) second-moment decays
W_DECAY = 0.95  # per step: the accumulated reasons' memory (~20 steps)
REACH_STEPS = 2.0  # informative steps until the target is halfway out to the items' cone
ACC_DECAY = 0.85  # memory of the held-out pair accuracy
EXPLORE_MIN, EXPLORE_MAX = 0.1, 0.5  # share of a batch that explores, by confidence
ACC_MARGIN = 0.05  # pairs the target separates by less than this are not a test of it
PULL_MIN, PULL_MAX = 0.25, 0.7  # how far explored items are slerped toward the target
MMR_DIVERSITY = 0.25
VERIFY_Z = 1.5  # a view this far above the user's norm deserves a second look nearby...
VERIFY_COS = 0.9  # ...unless the target is already there
LIKED_Z = 0.5  # views above this score count toward where the liked items are
LOC_DECAY = 0.98  # per view: old likes fade (tastes drift)
REASON_MIX = 0.5  # weight of the learned direction against the liked location
ELITES = 3  # standout views kept on trial (several interests each keep one)
ELITE_Z = 1.0  # a view this far above the user's norm becomes a standout...
ELITE_CAP = 1.5  # ...counted at most this much before any confirmation
ELITE_COS = 0.8  # a later view this close to it is a test of it
ELITE_RATE = 0.5  # weight of each test
ELITE_DROP = 0.3  # below this it was noise: dropped
ELITE_AIM = 1.0
CENTRE_SAMPLE = 256  # random items that estimate the corpus' common direction
CENTRE_SEED = 20240601  # the same sample for every user and replica
CENTRE_TTL_S = 600.0  # re-estimated this often (the collection grows)


class SumoPolicy(Policy):
    name = "sumo"
    description = "SUMO target optimiser (pairwise logistic reasons, scalar-Adam direction, cone)"

    def __init__(self, store: Store, rng: np.random.Generator) -> None:
        super().__init__(store, rng)
        self._centre: tuple[float, Vector, float] | None = None  # (time, direction, cone cos)

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

    def centre(self, fallback: Sequence[Vector]) -> tuple[Vector, float]:
        """The collection's common direction (CLIP embeddings share one) and the cosine of
        its items to it: the cone the items live on. Estimated from a fixed random sample,
        shared by all users of this policy object, refreshed now and then."""
        now = time.monotonic()
        if self._centre is None or now - self._centre[0] > CENTRE_TTL_S:
            hits = self.store.sample(CENTRE_SAMPLE, seed=CENTRE_SEED)
            items = self.store.retrieve([h.id for h in hits], with_vectors=True) if hits else []
            vs = [unit(it.vector) for it in items if it.vector is not None]
            if len(vs) < 8:  # an (almost) empty collection: the user's own views will do
                vs = [unit(v) for v in fallback]
                if not vs:
                    raise ValueError("no vectors to estimate the centre from")
                mean = np.mean(np.stack(vs), axis=0)
                return unit(mean), float(np.clip(np.linalg.norm(mean), 0.05, 0.999))
            mean = np.mean(np.stack(vs), axis=0)
            self._centre = (now, unit(mean), float(np.clip(np.linalg.norm(mean), 0.05, 0.999)))
        return self._centre[1], self._centre[2]

    @staticmethod
    def _direction(state: UserState) -> Vector | None:
        return decode_unit_i8(str(state.data["W"])) if "W" in state.data else None

    @staticmethod
    def _elites(state: UserState) -> list[list[Any]]:
        """Standout views still on trial: [vector, score, tests]."""
        return [[decode_unit_i8(v), float(sc), int(k)] for v, sc, k in state.data.get("el", [])]

    def _aim(self, state: UserState, w: Vector | None, centre: Vector, kappa: float,
             elites: Sequence[list[Any]]) -> Vector:
        """Where the evidence says the taste is, turned by the learned reasons.

        The base is the confirmed standouts (a region whose neighbours were also watched
        long is real; one long view alone is often noise), else the mean of the liked
        views, else the centre. The learned direction turns it by as much as its held-out
        accuracy earns; with no base, the centre is pushed along the direction out to the
        items' cone, so the point can lie where no item is (what the gap report needs)."""
        conf = self.confidence(state)
        weights = [ELITE_AIM * max(sc - ELITE_DROP, 0.0) * (1.0 + k) for _, sc, k in elites]
        if sum(weights) > 0:
            base = unit(np.sum([wt * v for wt, (v, _, _) in zip(weights, elites, strict=True)],
                               axis=0))
        elif "loc" in state.data and float(state.data.get("lw", 0.0)) > 0:
            base = unit(decode_unit_i8(str(state.data["loc"])))
        elif w is not None:
            steps = float(state.data.get("n", 0.0))
            alpha = math.sqrt(1.0 / kappa**2 - 1.0) * (1.0 - 0.5 ** (steps / REACH_STEPS))
            return unit(centre + alpha * w)
        else:
            return centre
        return base if w is None else unit(base + REASON_MIX * conf * w)

    # --- learning ------------------------------------------------------------------------
    def update(self, state: UserState, batch: Sequence[Scored]) -> None:
        if not batch:
            return
        d = state.data
        window = self._window(state)
        centre, kappa = self.centre([o.vector for o in batch])
        w = self._direction(state)
        dim = batch[0].vector.shape[0]
        grad = np.zeros(dim, dtype=np.float64)
        acc = float(d.get("acc", 0.5))
        gap_mean = float(d.get("gap", 1.0))
        informative = 0
        checks = 0
        loc = (decode_unit_i8(str(d["loc"])).astype(np.float64) * float(d.get("ln", 0.0))
               if "loc" in d else np.zeros(dim))
        lw = float(d.get("lw", 0.0))
        elites = self._elites(state)
        for o in batch:
            reason = np.zeros(dim, dtype=np.float64)
            pairs = 0
            for x, z in window:
                gap = o.z - z
                if abs(gap) < MIN_GAP:
                    continue
                diff = (o.vector - x) if gap > 0 else (x - o.vector)  # the "reason": winner − loser
                # The seed's winner bonus, on a per-user scale: decisive gaps count more,
                # but never more than 1 (a walk-away is clipped, not a landslide).
                bonus = 1.0 - math.exp(-abs(gap) / gap_mean)
                gap_mean = 0.9 * gap_mean + 0.1 * abs(gap)
                if w is not None:
                    margin = float(np.dot(w, diff))
                    # Held-out check of the direction, on pairs it tells apart clearly.
                    if abs(margin) > ACC_MARGIN:
                        acc = ACC_DECAY * acc + (1 - ACC_DECAY) * (1.0 if margin > 0 else 0.0)
                        checks += 1
                    pull = 1.0 / (1.0 + math.exp(BT_SCALE * margin))  # -dloss/dmargin
                else:
                    pull = 0.5
                reason += bonus * pull * diff
                pairs += 1
            if pairs:
                # Each new view brings one unit of evidence, shared among its pairs: one
                # outlier cannot outvote the window by winning every pair in it.
                grad += reason / pairs
                informative += 1
            window.append((o.vector, o.z))
            self._try_elites(elites, o)
            if o.z > LIKED_Z:
                lw = LOC_DECAY * lw + (o.z - LIKED_Z)
                loc = LOC_DECAY * loc + (o.z - LIKED_Z) * o.vector
            else:
                lw, loc = LOC_DECAY * lw, LOC_DECAY * loc
        window = window[-WINDOW:]
        if lw > 0:
            d.update(loc=encode_unit_i8(loc.astype(np.float32)), lw=round(lw, 4),
                     ln=round(float(np.linalg.norm(loc)), 5))
        d["el"] = [[encode_unit_i8(v), round(sc, 3), k] for v, sc, k in elites]
        if informative:
            w = self._step(d, w, grad, centre)
        if w is not None or elites or lw > 0:
            state.target = self._aim(state, w, centre, kappa, elites)
        elif state.target is None:
            # No pair yet: aim at the views weighted by how much they were liked.
            zs = np.asarray([z for _, z in window])
            ws = np.exp(zs - zs.max())
            state.target = unit(np.sum(ws[:, None] * np.stack([x for x, _ in window]), axis=0))
        d["win"] = [[encode_unit_i8(x), round(z, 3)] for x, z in window]
        d["acc"] = round(acc, 4)
        d["checks"] = int(d.get("checks", 0)) + checks
        d["gap"] = round(gap_mean, 4)

    @staticmethod
    def _try_elites(elites: list[list[Any]], o: Scored) -> None:
        """Confirm or drop: a view near a standout is a test of it; a new standout joins
        (its own score capped, so one walk-away needs a confirmation to stay)."""
        near = [i for i, (v, _, _) in enumerate(elites) if float(v @ o.vector) >= ELITE_COS]
        for i in near:
            elites[i][1] = (1 - ELITE_RATE) * elites[i][1] + ELITE_RATE * o.z
            elites[i][2] += 1
        if not near and o.z >= ELITE_Z:
            elites.append([o.vector, min(o.z, ELITE_CAP), 0])
        elites[:] = [e for e in elites if e[1] >= ELITE_DROP]
        elites.sort(key=lambda e: -e[1])
        del elites[ELITES:]

    def _step(self, d: dict[str, Any], w: Vector | None, grad: np.ndarray, centre: Vector
              ) -> Vector:
        """Adam with a *scalar* second moment on the unit direction: the step is an angle
        of about lr·(signal-to-noise), consistent reasons add up, noisy ones cancel, and
        per-coordinate scaling (what sends the seed wandering) never happens."""
        g = grad - np.dot(grad, centre) * centre  # the common direction says nothing of taste
        m = (decode_unit_i8(str(d["m"])).astype(np.float64) * float(d.get("mn", 0.0))
             if "m" in d else np.zeros_like(g))
        v = float(d.get("v", 0.0))
        n = float(d.get("n", 0.0)) + 1.0
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * float(np.dot(g, g))
        m_hat = m / (1 - BETA1**n)
        v_hat = v / (1 - BETA2**n)
        # The reasons accumulate (unnormalised): each step adds about one unit, so a step's
        # share of the direction falls as evidence grows (a decaying step for free), and a
        # slow fade of the sum keeps it able to follow a taste that drifts.
        acc_w = (decode_unit_i8(str(d["W"])).astype(np.float64) * float(d.get("Wn", 0.0))
                 if "W" in d else (np.zeros_like(g) if w is None else w.astype(np.float64)))
        acc_w = W_DECAY * acc_w + m_hat / (math.sqrt(v_hat) + 1e-12)
        acc_w -= float(np.dot(acc_w, centre)) * centre
        new = unit(acc_w.astype(np.float32))
        d.update(W=encode_unit_i8(new), Wn=float(f"{np.linalg.norm(acc_w):.6g}"),
                 m=encode_unit_i8(m.astype(np.float32)), mn=float(f"{np.linalg.norm(m):.6g}"),
                 v=float(f"{v:.6g}"), n=n)
        return new

    def seed(self, state: UserState, vectors: Sequence[Vector]) -> None:
        super().seed(state, vectors)
        # A warm start is a hint, not evidence: it sets the direction, confidence still has
        # to be earned.
        if state.target is not None:
            centre, _ = self.centre(vectors)
            w = state.target - float(np.dot(state.target, centre)) * centre
            if float(np.linalg.norm(w)) > 1e-6:
                state.data.update(W=encode_unit_i8(unit(w)), Wn=1.0)

    # --- choosing ------------------------------------------------------------------------
    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        if limit <= 0:
            return []
        window = self._window(state)
        avoid = [x for x, _ in window]
        self.centre(avoid)  # warm the shared estimate here, so feedback never pays for it
        target = state.target
        if target is None:  # cold start: cover the corpus
            return [h for h, _ in self.spread_items(limit, exclude, avoid)]
        c = self.confidence(state)
        # Stochastic rounding: a batch of 5 at 12% exploration still explores sometimes.
        share = EXPLORE_MAX - (EXPLORE_MAX - EXPLORE_MIN) * c
        n_explore = int(np.floor(limit * share + self.rng.random()))
        n_exploit = max(1, limit - n_explore)
        taken: set[str] = set()
        # Standouts first: the nearest unseen neighbour of each confirms or drops it, and
        # several interests each keep a foothold the single target would average away.
        elites = self._elites(state)[: max(0, n_exploit - 1)]
        exploit = self.nearest_distinct([e[0] for e in elites], exclude, taken)
        exploit += self.store.search_mmr(
            target, n_exploit - len(exploit), diversity=MMR_DIVERSITY,
            candidates=max(20, 4 * n_exploit), exclude=set(exclude) | taken)
        taken = {h.id for h in exploit}
        n_explore = limit - len(exploit)
        if n_explore <= 0:
            return exploit
        excl = set(exclude) | taken
        pull = PULL_MIN + (PULL_MAX - PULL_MIN) * c
        spread = self.spread_items(n_explore, excl, avoid)
        queries = [slerp(x, target, pull) for _, x in spread]
        explore = self.nearest_distinct(queries, excl, taken)
        return exploit + explore


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

"""How much taste capture can a search over places reach, knowing more than SUMO does?

SUMO searches the corpus' regions for the one a user wants. This measures that kind of
search, stripped of the store, the optimizer and the candidate queries, with its knowledge
and its way of choosing set by hand, on the benchmark's users and capture (T <= 100):

- ``--hypotheses clusters``: the places are the simulator's true cluster centres (the
  hidden tastes lie within cosine ~0.96 of one); ``regions``: the k-means map SUMO uses
  (``--regions K`` sets its size); ``medoids``: that map with each centroid replaced by
  the item nearest it (a place on the data, not the average of a curved patch);
  ``tastes``: one place per cluster, each jittered off its centre as a taste is, and the
  user's own cluster's place exactly the user's (first) taste, so that finding the place
  is finding the taste.
- ``--knowledge known``: each user's own dwell model (their typical dwell, lift, noise,
  interest curve and liked fraction) is known, only the place is not; ``policy``: SUMO's
  own model (``recommender.policies.evidence``), which fits a typical dwell and a lift
  per place under generic priors. (A user of several interests is modelled by their
  first; none of the models explains two places at once.)
- ``--choose greedy``: every slot shows the unseen item of highest posterior-expected dwell
  (over the whole corpus; ``sumo`` takes it over a few queries' candidates); ``thompson``:
  each slot draws a place from the posterior (tempered by ``--temper``) and shows its
  nearest unseen item (the policy ``sumo`` used until session 4); ``kg`` (known model
  only): greedy plus the knowledge gradient, ``--kg-weight`` x the impressions left x the
  expected rise of the best item's expected dwell once this item's dwell is seen (Monte
  Carlo over ``--kg-samples`` dwells drawn from the posterior), over the 200 best unseen
  items and each likely place's nearest: a look-ahead that pays for information;
  ``believer`` (known model only): each slot of a batch chosen greedily as if the earlier
  slots had met the user's typical dwell, so that one batch asks several questions.

    python research/bench_search_ceiling.py                       # clusters, known, greedy
    python research/bench_search_ceiling.py --choose thompson --temper 3
    python research/bench_search_ceiling.py --hypotheses regions --knowledge policy
    python research/bench_search_ceiling.py --noise-free
    python research/bench_search_ceiling.py --choose kg --kg-weight 0.3
    python research/bench_search_ceiling.py --choose believer
    python research/bench_search_ceiling.py --hypotheses tastes
    python research/bench_search_ceiling.py --world manifold:lognormal --models niche

No store is involved: the corpus is the benchmark's (512-d, 200 clusters), in memory;
``--world`` takes one of the benchmark's worlds' corpus and users instead.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from numpy.typing import NDArray

from recommender.policies.evidence import RegionEvidence
from recommender.regions import RegionMap, build_region_map, calibrated
from recommender.sim.corpus import APPEAL_SD, SyntheticCorpus, make_corpus
from recommender.sim.harness import user_seed
from recommender.sim.runner import Truth
from recommender.sim.users import SimUser, UserModel, jitter, make_users
from recommender.sim.worlds import world


class KnownModel:
    """Each place's exact expected log dwell for this user, Student-t residuals."""

    def __init__(self, user: SimUser, corpus: SyntheticCorpus, places: RegionMap) -> None:
        ts = user.tastes[0]
        x = corpus.vectors
        frac = float(np.mean(x @ ts.vector >= ts.threshold))
        sims = x @ places.centroids.T
        n = len(x)
        k = max(1, int(round(frac * n)))
        srt = np.sort(sims, axis=0)
        z = (sims - srt[n // 2]) / np.maximum(srt[n - k] - srt[n // 2], 1e-3)
        # (items, places): the user's own curve, calibrated per place as per taste
        self.mu = math.log(user.base_ms) + user.gain * user.interest_curve(z)
        self.typical = math.log(user.base_ms) + user.gain * float(
            user.interest_curve(np.zeros(1))[0])
        self.scale = math.hypot(user.sigma, APPEAL_SD * user.appeal_weight)
        self.log_odds = np.zeros(places.size)

    def add(self, item: int, dwell_ms: float) -> None:
        r = (math.log(max(dwell_ms, 100.0)) - self.mu[item]) / self.scale
        self.log_odds -= 2.0 * np.log1p(r * r / 3.0)

    def probs(self) -> NDArray[np.float64]:
        p = np.exp(self.log_odds - self.log_odds.max())
        return np.asarray(p / p.sum())

    def value(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        keep = np.flatnonzero(p >= 1e-4)
        return np.asarray(np.exp(self.mu[:, keep]) @ p[keep])


class PolicyModel:
    """SUMO's own evidence, with the whole corpus as candidates."""

    def __init__(self, corpus: SyntheticCorpus, places: RegionMap) -> None:
        self.x = corpus.vectors
        self.ev = RegionEvidence(places)

    def add(self, item: int, dwell_ms: float) -> None:
        self.ev.add(self.x[item], dwell_ms)

    def probs(self) -> NDArray[np.float64]:
        return self.ev.posterior().probs

    def value(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.ev.value(self.ev.posterior(), self.x)


def knowledge_gradient(model: KnownModel, p: NDArray[np.float64], value: NDArray[np.float64],
                       seen: NDArray[np.bool_], left: int, args: argparse.Namespace,
                       rng: np.random.Generator) -> NDArray[np.int64]:
    """Unseen items by expected dwell now plus ``left`` times the expected rise of the best
    item's expected dwell once this item's dwell is known (the knowledge gradient)."""
    top = np.argpartition(-value, 200)[:200]
    likely = np.flatnonzero(p >= 1e-3)
    mu_l = np.where(seen[:, None], -np.inf, model.mu[:, likely])
    per_place = np.argmax(mu_l, axis=0)
    cand = np.unique(np.concatenate([top, per_place]))
    cand = cand[~seen[cand]]
    keep = np.flatnonzero(p >= 1e-4)
    pk = p[keep] / p[keep].sum()
    mu = model.mu[np.ix_(cand, keep)]  # (C, P)
    ev = np.exp(mu)
    best = float((ev @ pk).max())
    s = args.kg_samples
    draws = rng.choice(len(keep), size=s, p=pk)
    z = rng.standard_normal(s)
    y = mu[:, draws] + model.scale * z  # (C, S)
    r = (y[:, :, None] - mu[:, None, :]) / model.scale  # (C, S, P)
    lo = np.log(pk)[None, None, :] - 2.0 * np.log1p(r * r / 3.0)
    post = np.exp(lo - lo.max(axis=2, keepdims=True))
    post /= post.sum(axis=2, keepdims=True)
    after = (post @ ev.T).max(axis=2)  # (C, S)
    gain = after.mean(axis=1) - best
    score = value[cand] + args.kg_weight * left * gain
    return cand[np.argsort(-score)]


def believer_batch(model: KnownModel, seen: NDArray[np.bool_], n: int) -> list[int]:
    """Greedy one slot at a time, each next slot chosen as if the earlier ones had met this
    user's typical dwell (no interest): the batch spreads over the hypotheses instead of
    asking one question five times."""
    saved = model.log_odds.copy()
    picks: list[int] = []
    for _ in range(n):
        value = np.where(seen, -np.inf, model.value(model.probs()))
        i = int(np.argmax(value))
        seen[i] = True
        picks.append(i)
        model.add(i, math.exp(model.typical))
    model.log_odds = saved
    return picks


def taste_places(user: SimUser, corpus: SyntheticCorpus, rng: np.random.Generator
                 ) -> RegionMap:
    """One place per cluster, each as far from its centre as a taste is (``make_users``'
    jitter), and the user's own cluster's place the user's exact (first) taste."""
    w = np.stack([jitter(rng, c) for c in corpus.centers])
    w[int(np.argmax(corpus.centers @ user.taste))] = user.taste
    return calibrated(corpus.vectors, w, len(corpus.vectors))


def run(user: SimUser, index: int, corpus: SyntheticCorpus, places: RegionMap,
        args: argparse.Namespace) -> float:
    truth = Truth(user, corpus)
    rng = np.random.default_rng([user_seed(args.seed, index), 7])
    if args.hypotheses == "tastes":  # its own draws: the dwells stay those of other runs
        jitter = np.random.default_rng([user_seed(args.seed, index), 13])
        places = taste_places(user, corpus, jitter)
    model = (KnownModel(user, corpus, places) if args.knowledge == "known"
             else PolicyModel(corpus, places))
    kg_rng = np.random.default_rng([user_seed(args.seed, index), 11])  # not the dwells'
    sims = corpus.vectors @ places.centroids.T if args.choose == "thompson" else None
    seen = np.zeros(len(corpus.ids), dtype=bool)
    got = np.zeros(args.horizon)
    for t0 in range(0, args.horizon, args.batch):
        p = model.probs()
        if sims is not None:
            q = p ** args.temper
            picks = []
            for r in rng.choice(places.size, size=args.batch, p=q / q.sum()):
                i = int(np.argmax(np.where(seen, -np.inf, sims[:, r])))
                seen[i] = True
                picks.append(i)
        elif args.choose == "believer":
            assert isinstance(model, KnownModel)
            picks = believer_batch(model, seen, args.batch)
        elif args.choose == "kg":
            assert isinstance(model, KnownModel)
            value = np.where(seen, -np.inf, model.value(p))
            score = knowledge_gradient(model, p, value, seen, args.horizon - t0, args, kg_rng)
            picks = [int(i) for i in score[:args.batch]]
            seen[picks] = True
        else:
            value = np.where(seen, -np.inf, model.value(p))
            top = np.argpartition(-value, args.batch)[:args.batch]
            picks = [int(i) for i in top[np.argsort(-value[top])]]
            seen[picks] = True
        for k, i in enumerate(picks):
            t = t0 + k
            got[t] = truth(t)[i]
            model.add(i, user.dwell_ms(corpus.vectors[i], rng, t=t,
                                       appeal=float(corpus.appeal[i])))
    expected = truth(0)
    base = float(expected.mean())
    oracle = float(np.sort(expected)[::-1][:args.horizon].mean())
    return (float(got.mean()) - base) / (oracle - base)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--users", type=int, default=24, help="per user model")
    ap.add_argument("--horizon", type=int, default=100, choices=range(5, 101),
                    metavar="T<=100", help="(drift users change taste after 100)")
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hypotheses", choices=("clusters", "regions", "medoids", "tastes"),
                    default="clusters")
    ap.add_argument("--regions", type=int, help="places of the k-means map (default: SUMO's "
                    "count for the collection)")
    ap.add_argument("--knowledge", choices=("known", "policy"), default="known")
    ap.add_argument("--choose", choices=("greedy", "thompson", "kg", "believer"), default="greedy")
    ap.add_argument("--temper", type=float, default=1.0, help="Thompson draws: posterior^t")
    ap.add_argument("--kg-weight", type=float, default=1.0)
    ap.add_argument("--kg-samples", type=int, default=16)
    ap.add_argument("--noise-free", action="store_true", help="dwell = its expectation")
    ap.add_argument("--world", help="a benchmark world (CORPUS:DWELL or a preset) instead of "
                    "the default corpus and users")
    ap.add_argument("--models", default=",".join(m.value for m in UserModel),
                    help="comma-separated tastes")
    args = ap.parse_args()
    if args.choose in ("kg", "believer") and args.knowledge != "known":
        ap.error(f"--choose {args.choose} needs --knowledge known")
    t0 = time.perf_counter()
    w = world(args.world) if args.world else None
    corpus = (w.make_corpus(args.items, args.seed) if w is not None
              else make_corpus(args.items, 512, 200, seed=args.seed))
    if args.hypotheses in ("regions", "medoids"):
        places = build_region_map(corpus.vectors, k=args.regions)
        if args.hypotheses == "medoids":  # each region's item nearest its centroid
            medoids = np.argmax(corpus.vectors @ places.centroids.T, axis=0)
            places = calibrated(corpus.vectors, corpus.vectors[medoids], args.items)
    else:
        places = calibrated(corpus.vectors, corpus.centers, args.items)
    means = []
    row = []
    for model in [UserModel(m) for m in args.models.split(",")]:
        users = (w.make_users(model.value, corpus, args.users, args.seed) if w is not None
                 else make_users(model.value, corpus, args.users, seed=args.seed))
        caps = []
        for i, u in enumerate(users):
            u.noiseless = args.noise_free
            caps.append(run(u, i, corpus, places, args))
        means.append(float(np.mean(caps)))
        row.append(f"{model.value} {means[-1]:.2f}")
    label = ((f"{args.world}: " if args.world else "")
             + f"{args.hypotheses}, {args.knowledge}, {args.choose}"
             + (f" (temper {args.temper:g})" if args.choose == "thompson" else "")
             + (f" (weight {args.kg_weight:g})" if args.choose == "kg" else "")
             + (", noise-free" if args.noise_free else ""))
    print(f"{label} | T={args.horizon}: {' '.join(row)} | mean {np.mean(means):.3f} "
          f"({time.perf_counter() - t0:.0f} s, {args.items} items, {args.users} users per "
          f"model, seed {args.seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

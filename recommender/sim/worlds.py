"""A family of simulated worlds: corpus geometries x dwell behaviours x tastes.

No simulator is a person, and a recommender tuned to one simulator learns that simulator.
So the benchmark runs over a family of worlds that differ where real CLIP collections and
real people differ, each named ``CORPUS:DWELL`` (the table's columns are the tastes, see
``recommender.sim.users.UserModel``), or ``CORPUS:DWELL:TASTE`` for one taste.

Corpora (``CORPORA``):

- ``clusters``: concepts of heavy-tailed sizes grouped into topics (``make_corpus``);
- ``manifold``: a continuous curved surface with no clusters at all (a smooth random map of
  a 4-d latent space into the cone CLIP embeddings occupy);
- ``topics``: a few huge, dense topics holding most of the collection, and a long tail;
- ``bursts``: a photo library, where most scenes are 2-20 near-duplicate shots.

Dwell behaviours (``DWELLS``), applied on top of each taste's own users:

- ``mixed``: each user lognormal or Weibull (shape 0.9-1.6), the project's first simulator;
- ``weibull``: Weibull dwell with shape < 1 (0.5-0.9: Liu et al. 2010's "negative aging");
- ``lognormal``: lognormal dwell only;
- ``smooth``: dwell rises smoothly with similarity (no knee around the liked items);
- ``threshold``: a "like" user: interest switches on at the liked items and is flat
  elsewhere, so unrelated content carries almost no signal (a flat landscape);
- ``speed``: typical dwell spans 10x between users (0.4 s to 4 s);
- ``walkaway``: 8 % of views are the phone left on the table (1-40 minutes);
- ``flick``: 25 % of views are flicks past (40-300 ms);
- ``satiation``: each earlier near-copy seen makes the next one's dwell 0.6x.

Tastes (``UserModel``): one narrow region, several interests, a broad *direction* through
the whole collection (not a cluster), a taste that drifts (between impressions 30 and 70),
and a very noisy user.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from recommender.sim.corpus import SyntheticCorpus, make_corpus
from recommender.sim.users import SimUser, UserModel, make_users

DIM = 512
CLUSTERS = 200
DRIFT_AT = (30, 71)  # drifting tastes change between these impressions (T=100 sees it)
PRESETS = {"default": "clusters:mixed", "flat": "clusters:threshold"}


class UnknownWorld(ValueError):
    pass


# --- corpora ------------------------------------------------------------------------------
def _clusters(n: int, seed: int, dim: int, clusters: int) -> SyntheticCorpus:
    return make_corpus(n, dim, clusters, seed=seed)


def _topics(n: int, seed: int, dim: int, clusters: int) -> SyntheticCorpus:
    # Six huge dense topics hold ~70 % of the items; 194 small loose ones share the rest.
    rng = np.random.default_rng([seed, 21])
    weights = rng.lognormal(0.0, 1.2, size=clusters)
    big = rng.choice(clusters, size=6, replace=False)
    weights[big] = 0.0
    weights *= 0.3 / weights.sum()
    weights[big] = 0.7 / 6
    spreads = rng.uniform(0.55, 0.8, size=clusters).astype(np.float32)
    spreads[big] = rng.uniform(0.35, 0.45, size=6)
    return make_corpus(n, dim, clusters, seed=seed, weights=weights, spreads=spreads)


def _bursts(n: int, seed: int, dim: int, clusters: int) -> SyntheticCorpus:
    # Scenes drawn like a clustered corpus, then each scene shot 1-20 times (geometric,
    # mean ~6): the shots of one scene sit at cosine ~0.92 from each other.
    rng = np.random.default_rng([seed, 22])
    shots = np.minimum(rng.geometric(1 / 6, size=n), 20)
    scenes = int(np.searchsorted(np.cumsum(shots), n)) + 1
    shots = shots[:scenes]
    shots[-1] -= int(shots.sum()) - n
    base = make_corpus(scenes, dim, clusters, seed=seed)
    which = np.repeat(np.arange(scenes), shots)
    noise = rng.standard_normal((n, dim)).astype(np.float32) * (0.3 / math.sqrt(dim))
    vectors = base.vectors[which] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    appeal = (base.appeal[which] + 0.1 * rng.standard_normal(n)).astype(np.float32)
    return SyntheticCorpus(
        ids=[f"burst-{seed}-{i:07d}" for i in range(n)], vectors=vectors.astype(np.float32),
        centers=base.centers, labels=base.labels[which], topics=base.topics, appeal=appeal)


def _manifold(n: int, seed: int, dim: int, clusters: int) -> SyntheticCorpus:
    # A smooth random map of [0, 1]^4 (random Fourier features, a few wavelengths across)
    # into the cone around a common direction; "centres" are 200 anchor points of the same
    # surface (where single-place tastes lie), labels the nearest anchor in the latent.
    rng = np.random.default_rng([seed, 23])
    latent_dim, features = 4, 256
    freq = rng.standard_normal((latent_dim, features)) * 4.0
    phase = rng.uniform(0, 2 * math.pi, features)
    mix = rng.standard_normal((features, dim)) / math.sqrt(features)
    common = rng.standard_normal(dim)
    common /= np.linalg.norm(common)

    def embed(u: NDArray[np.float64]) -> NDArray[np.float32]:
        f = np.cos(u @ freq + phase) * math.sqrt(2.0)
        x = 0.8 * common + 0.9 * (f @ mix) / math.sqrt(dim)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    u = rng.random((n, latent_dim))
    anchors = rng.random((clusters, latent_dim))
    vectors = np.concatenate([embed(u[s:s + 65536]) for s in range(0, n, 65536)])
    labels = np.concatenate([
        np.argmin(((u[s:s + 65536, None, :] - anchors[None]) ** 2).sum(-1), axis=1)
        for s in range(0, n, 65536)]).astype(np.int32)
    topics = np.argmin(((anchors[:, None, :] - rng.random((20, latent_dim))[None]) ** 2)
                       .sum(-1), axis=1).astype(np.int32)
    appeal = (rng.standard_normal(n) * 0.3).astype(np.float32)
    return SyntheticCorpus(
        ids=[f"mani-{seed}-{i:07d}" for i in range(n)], vectors=vectors, centers=embed(anchors),
        labels=labels, topics=topics, appeal=appeal)


CORPORA: dict[str, Callable[[int, int, int, int], SyntheticCorpus]] = {
    "clusters": _clusters, "manifold": _manifold, "topics": _topics, "bursts": _bursts,
}


# --- dwell behaviours ---------------------------------------------------------------------
def _weibull(u: SimUser, rng: np.random.Generator) -> None:
    u.weibull_shape = float(rng.uniform(0.5, 0.9))


def _lognormal(u: SimUser, rng: np.random.Generator) -> None:
    u.weibull_shape = None


def _smooth(u: SimUser, rng: np.random.Generator) -> None:
    u.graded = 1.0


def _threshold(u: SimUser, rng: np.random.Generator) -> None:
    u.graded, u.sharpness = 0.0, 25.0


def _speed(u: SimUser, rng: np.random.Generator) -> None:
    u.base_ms = float(math.exp(rng.uniform(math.log(400.0), math.log(4000.0))))


def _walkaway(u: SimUser, rng: np.random.Generator) -> None:
    u.outlier_rate = max(u.outlier_rate, 0.08)


def _flick(u: SimUser, rng: np.random.Generator) -> None:
    u.flick_rate = max(u.flick_rate, 0.25)


def _satiation(u: SimUser, rng: np.random.Generator) -> None:
    u.satiation = 0.6


DWELLS: dict[str, Callable[[SimUser, np.random.Generator], None]] = {
    "mixed": lambda u, rng: None, "weibull": _weibull, "lognormal": _lognormal,
    "smooth": _smooth, "threshold": _threshold, "speed": _speed, "walkaway": _walkaway,
    "flick": _flick, "satiation": _satiation,
}


# --- worlds -------------------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    corpus: str
    dwell: str
    tastes: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.corpus}:{self.dwell}"

    def make_corpus(self, n: int, seed: int, dim: int = DIM, clusters: int = CLUSTERS
                    ) -> SyntheticCorpus:
        return CORPORA[self.corpus](n, seed, dim, clusters)

    def make_users(self, taste: str, corpus: SyntheticCorpus, n: int, seed: int
                   ) -> list[SimUser]:
        """``n`` users of one taste, with this world's dwell behaviour (deterministic)."""
        users = make_users(taste, corpus, n, seed=seed)
        rng = np.random.default_rng([seed, 31, list(UserModel).index(UserModel(taste))])
        for u in users:
            DWELLS[self.dwell](u, rng)
            if u.switch_at is not None:
                u.switch_at = int(rng.integers(*DRIFT_AT))
        return users


def world(name: str) -> World:
    """``CORPUS:DWELL`` or ``CORPUS:DWELL:TASTE`` (or a preset: ``default``, ``flat``)."""
    parts = PRESETS.get(name, name).split(":")
    if len(parts) not in (2, 3):
        raise UnknownWorld(f"world {name!r} is not CORPUS:DWELL[:TASTE] or a preset "
                           f"({', '.join(PRESETS)})")
    corpus, dwell = parts[0], parts[1]
    if corpus not in CORPORA:
        raise UnknownWorld(f"unknown corpus {corpus!r}: one of {', '.join(CORPORA)}")
    if dwell not in DWELLS:
        raise UnknownWorld(f"unknown dwell {dwell!r}: one of {', '.join(DWELLS)}")
    tastes = tuple(m.value for m in UserModel)
    if len(parts) == 3:
        if parts[2] not in tastes:
            raise UnknownWorld(f"unknown taste {parts[2]!r}: one of {', '.join(tastes)}")
        tastes = (parts[2],)
    return World(corpus, dwell, tastes)


def world_names() -> list[str]:
    return [f"{c}:{d}" for c in CORPORA for d in DWELLS]

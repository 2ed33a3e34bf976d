"""CLIP-like synthetic corpora.

Real CLIP image embeddings are not spread over the sphere: they sit in a cone around a
common direction (two unrelated photos still have cosine ~0.4-0.5), cluster by concept,
and concepts group into broader topics (cats near dogs, far from invoices). Within a
cluster the spread is anisotropic (a few directions carry most variance). The generator
reproduces those traits so policies meet the same geometry they will meet on real data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from indexer.store.base import IMPORT_PREFIX, CollectionSpec, Item, Store

COMMON_WEIGHT = 0.8  # -> unrelated cluster centres at cosine ~0.5
TOPIC_WEIGHT = 0.5  # -> clusters of one topic at cosine ~0.7
OWN_WEIGHT = 0.6
SPREAD = (0.45, 0.75)  # per-cluster noise norm: item-to-centre cosine ~0.8-0.9
APPEAL_SD = 0.3  # item-intrinsic attractiveness, in log-dwell units (hidden from policies)
SYNTHETIC_MODEL = IMPORT_PREFIX + "synthetic-clip"


@dataclass
class SyntheticCorpus:
    ids: list[str]
    vectors: NDArray[np.float32]  # (n, dim), unit norm
    centers: NDArray[np.float32]  # (clusters, dim), unit norm, holes included
    labels: NDArray[np.int32]  # (n,) cluster of each item
    topics: NDArray[np.int32]  # (clusters,) topic of each cluster
    appeal: NDArray[np.float32]  # (n,) hidden per-item log-dwell offset
    holes: tuple[int, ...] = ()
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def cluster_sizes(self) -> NDArray[np.int64]:
        return np.bincount(self.labels, minlength=len(self.centers))

    def index(self, item_id: str) -> int:
        if not self._index:
            self._index = {k: i for i, k in enumerate(self.ids)}
        return self._index[item_id]

    def spec(self) -> CollectionSpec:
        return CollectionSpec(dim=self.dim, model=SYNTHETIC_MODEL)


def _unit_rows(a: NDArray[np.float32]) -> NDArray[np.float32]:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def make_corpus(
    n: int, dim: int = 512, clusters: int = 200, seed: int = 0, holes: Sequence[int] = (),
    topics: int | None = None, weights: NDArray[np.float64] | None = None,
    spreads: NDArray[np.float32] | None = None,
) -> SyntheticCorpus:
    """``n`` unit vectors in ``clusters`` clusters (sizes vary ~20x) grouped into topics.

    ``holes`` are cluster indices left without items (their centres are still returned):
    planted gaps for the gap report's simulation. ``weights`` (relative cluster sizes) and
    ``spreads`` (per-cluster noise norms) replace the drawn ones (other corpus geometries,
    ``recommender.sim.worlds``).
    """
    rng = np.random.default_rng(seed)
    n_topics = topics or max(2, clusters // 10)
    common = rng.standard_normal(dim).astype(np.float32)
    common /= np.linalg.norm(common)
    topic_dirs = _unit_rows(rng.standard_normal((n_topics, dim)).astype(np.float32))
    cluster_topic = rng.integers(0, n_topics, size=clusters).astype(np.int32)
    own = _unit_rows(rng.standard_normal((clusters, dim)).astype(np.float32))
    centers = _unit_rows(
        COMMON_WEIGHT * common + TOPIC_WEIGHT * topic_dirs[cluster_topic] + OWN_WEIGHT * own
    )
    spread = rng.uniform(*SPREAD, size=clusters).astype(np.float32)
    if spreads is not None:
        spread = np.asarray(spreads, np.float32)

    # Cluster sizes: lognormal weights (a few big concepts, a long tail of small ones).
    drawn = rng.lognormal(0.0, 0.9, size=clusters)
    weights = drawn if weights is None else np.array(weights, np.float64)
    hole_set = {int(h) for h in holes}
    for h in hole_set:
        weights[h] = 0.0
    labels = rng.choice(clusters, size=n, p=weights / weights.sum()).astype(np.int32)

    # Anisotropic within-cluster noise: power-law spectrum in a random rotation.
    rot, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    rot = rot.astype(np.float32)
    spectrum = (np.arange(dim, dtype=np.float32) + 8.0) ** -0.6
    spectrum *= np.sqrt(dim / np.sum(spectrum**2))  # E|noise|^2 = 1 before the spread scale
    vectors = np.empty((n, dim), dtype=np.float32)
    chunk = 65536
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        z = rng.standard_normal((stop - start, dim)).astype(np.float32)
        noise = (z * (spectrum / np.sqrt(dim))) @ rot
        lab = labels[start:stop]
        vectors[start:stop] = _unit_rows(centers[lab] + spread[lab, None] * noise)
    appeal = (rng.standard_normal(n) * APPEAL_SD).astype(np.float32)
    ids = [f"syn-{seed}-{i:07d}" for i in range(n)]
    return SyntheticCorpus(
        ids=ids, vectors=vectors, centers=centers, labels=labels, topics=cluster_topic,
        appeal=appeal, holes=tuple(sorted(hole_set)),
    )


def load_corpus(store: Store, corpus: SyntheticCorpus, *, batch: int = 2048) -> None:
    """Write the corpus into ``store`` (payload: item id and cluster) and build indexes."""
    store.ensure_collection(corpus.spec())
    for start in range(0, len(corpus.ids), batch):
        stop = min(len(corpus.ids), start + batch)
        store.upsert([
            Item(id=corpus.ids[i], vector=corpus.vectors[i],
                 payload={"item_id": corpus.ids[i], "cluster": int(corpus.labels[i])})
            for i in range(start, stop)
        ])
    store.optimize()

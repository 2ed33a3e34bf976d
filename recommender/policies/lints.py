"""``lints``: linear Thompson sampling on the embeddings.

Reward (the robust dwell score) is modelled as linear in a fixed random projection of the
item vector to ``K`` dimensions: φ(x) = P·x. A full 512-d covariance would not fit the
16 KB state budget; 48 dimensions do (upper triangle of A in float32). Because
⟨θ, P·x⟩ = ⟨Pᵀθ, x⟩, each Thompson draw θ maps to one query vector Pᵀθ and the store's
nearest-neighbour search returns exactly the bandit's argmax over the whole corpus.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from indexer.store.base import Hit
from recommender.policies.base import Policy, Scored
from recommender.state import UserState, decode_f32, encode_f32, unit

K = 48
LAMBDA = 1.0  # ridge prior
NU = 0.5  # posterior scale of the Thompson draw
PROJECTION_SEED = 20240517  # fixed: stored states depend on the projection


@lru_cache(maxsize=4)
def projection(dim: int) -> NDArray[np.float32]:
    """K×dim Gaussian projection with rows scaled so that |P·x| ≈ |x|."""
    rng = np.random.default_rng(PROJECTION_SEED)
    return (rng.standard_normal((K, dim)) / np.sqrt(K)).astype(np.float32)


_IU = np.triu_indices(K)


def _pack(a: NDArray[np.float64]) -> str:
    return encode_f32(a[_IU].astype(np.float32))


def _unpack(s: str) -> NDArray[np.float64]:
    a = np.zeros((K, K), dtype=np.float64)
    a[_IU] = decode_f32(s)
    return a + np.triu(a, 1).T


class LinTSPolicy(Policy):
    name = "lints"
    description = f"linear Thompson sampling in a {K}-d random projection of the embeddings"

    def _model(self, state: UserState) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        d = state.data
        a = _unpack(d["A"]) if "A" in d else LAMBDA * np.eye(K)
        b = decode_f32(d["b"]).astype(np.float64) if "b" in d else np.zeros(K)
        return a, b

    def update(self, state: UserState, batch: Sequence[Scored]) -> None:
        if not batch:
            return
        p = projection(batch[0].vector.shape[0])
        a, b = self._model(state)
        phi = np.stack([o.vector for o in batch]) @ p.T  # (n, K)
        r = np.asarray([o.z for o in batch])
        a += phi.T @ phi
        b += phi.T @ r
        state.data["A"] = _pack(a)
        state.data["b"] = encode_f32(b.astype(np.float32))
        mean = np.linalg.solve(a, b)
        state.target = unit(p.T @ mean)

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        if limit <= 0:
            return []
        dim = state.target.shape[0] if state.target is not None else None
        if dim is None:
            spec = self.store.spec()
            if spec is None:
                return self.random_items(limit, exclude)
            dim = spec.dim
        p = projection(dim)
        a, b = self._model(state)
        cov = np.linalg.inv(a)
        mean = cov @ b
        chol = np.linalg.cholesky(NU**2 * cov + 1e-9 * np.eye(K))
        draws = mean[None, :] + self.rng.standard_normal((limit, K)) @ chol.T
        queries = [unit((p.T @ th).astype(np.float32)) for th in draws]
        return self.nearest_distinct(queries, exclude, set())

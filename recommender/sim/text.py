"""The synthetic corpus's text side: what a CLIP text encoder is to real images.

A synthetic corpus has no words, so its simulated users describe what they want by the
concept's name: ``"cluster 5"`` (optionally followed by their own wording, ``"cluster 5,
at dusk"``, which moves the embedding a little, as rephrasing does in CLIP). The embedding
keeps what distinguishes the cluster (its centre minus the items' common direction) and,
like CLIP's text tower, lives in its own cone: a shared text direction (the "modality
gap") dominates, so a query's cosine to its own images is ~0.3-0.4, not ~0.9. Any other
text (the gap report's label vocabulary) maps to a random direction in the same cone.

Implements the ``TextEmbedder`` protocol the service loads, and names the synthetic
collection's model, so the service accepts it for that collection only.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from numpy.typing import NDArray

from indexer.store.base import CollectionSpec
from recommender.sim.corpus import SyntheticCorpus

GAP = 1.2  # weight of the shared text direction against the (unit) distinctive part
NOISE = 0.35  # norm of a wording's own offset (queries for one concept: cosine ~0.94)
_NAME = re.compile(r"^\s*cluster\s+(\d+)\b")


class SyntheticText:
    def __init__(self, corpus: SyntheticCorpus, seed: int = 0) -> None:
        self.corpus = corpus
        self.dim = corpus.dim
        self.name = corpus.spec().model
        mean = corpus.vectors.mean(axis=0)
        self.mean = (mean / np.linalg.norm(mean)).astype(np.float32)
        g = np.random.default_rng([seed, 4242]).standard_normal(self.dim).astype(np.float32)
        self.gap = self._unit(g - float(g @ self.mean) * self.mean)

    def spec(self) -> CollectionSpec:
        return self.corpus.spec()

    @staticmethod
    def _unit(v: NDArray[np.float32]) -> NDArray[np.float32]:
        return (v / np.linalg.norm(v)).astype(np.float32)

    def _distinct(self, v: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._unit(v - float(v @ self.mean) * self.mean)

    def encode_text(self, text: str) -> NDArray[np.float32]:
        digest = int.from_bytes(hashlib.sha1(text.strip().lower().encode()).digest()[:8], "big")
        rng = np.random.default_rng(digest)
        m = _NAME.match(text.lower())
        if m and int(m.group(1)) < len(self.corpus.centers):
            own = self._distinct(self.corpus.centers[int(m.group(1))])
        else:
            own = self._distinct(rng.standard_normal(self.dim).astype(np.float32))
        noise = rng.standard_normal(self.dim).astype(np.float32) / np.sqrt(self.dim)
        return self._unit(GAP * self.gap + own + NOISE * noise)

    def encode_texts(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.encode_text(t) for t in texts])

"""The CLIP text encoder behind search and text warm starts, loaded once per process.

Text features only make sense when the loaded model made the collection's vectors: a text
embedding from another model (or for imported vectors of unknown origin) lives in another
space and would return noise, so the service refuses instead (409), and says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from starlette.concurrency import run_in_threadpool

from indexer.errors import SumoError
from indexer.settings import CorpusSettings
from indexer.store.base import CollectionSpec, Vector
from recommender.api.errors import TextEncoderUnavailable, TextSpaceMismatch
from recommender.api.schemas import ModelStatus

log = logging.getLogger(__name__)


class TextEmbedder(Protocol):
    """The part of ``indexer.embedder.Embedder`` the service uses."""

    name: str
    dim: int

    def spec(self) -> CollectionSpec: ...

    def encode_texts(self, texts: list[str]) -> NDArray[np.float32]: ...


def made_by_clip(spec: CollectionSpec) -> bool:
    """Whether a collection's vectors came from a CLIP model (not imported vectors)."""
    return not spec.model.startswith("import:")


@dataclass
class TextEncoder:
    embedder: TextEmbedder | None
    status: ModelStatus
    reason: str = ""

    @classmethod
    def load(
        cls, settings: CorpusSettings, spec: CollectionSpec | None,
        embedder: TextEmbedder | None = None,
    ) -> TextEncoder:
        """Use ``embedder`` if given, else load the configured model when the collection
        needs one. Never raises: a missing model only disables text features."""
        if spec is None:
            return cls(None, ModelStatus.NOT_NEEDED, "no collection yet: nothing to search")
        if embedder is None and not made_by_clip(spec):
            return cls(None, ModelStatus.NOT_NEEDED,
                       f"the collection holds imported vectors ({spec.model}); "
                       f"no text encoder matches them")
        if embedder is None:
            try:
                from indexer.embedder import load_embedder

                embedder = load_embedder(settings)
            except SumoError as exc:  # WeightsMissing and friends
                log.warning("text encoder not loaded: %s", exc)
                return cls(None, ModelStatus.UNAVAILABLE, str(exc))
        have = embedder.spec()
        if have != spec:
            return cls(embedder, ModelStatus.NOT_NEEDED,
                       f"the collection was made by {spec.model} ({spec.dim}-d), "
                       f"the loaded model is {have.model} ({have.dim}-d)")
        return cls(embedder, ModelStatus.LOADED)

    @property
    def usable(self) -> bool:
        return self.status is ModelStatus.LOADED and self.embedder is not None

    def encode_sync(self, text: str) -> Vector:
        if not self.usable or self.embedder is None:
            if self.status is ModelStatus.UNAVAILABLE:
                raise TextEncoderUnavailable(f"text features are unavailable: {self.reason}")
            raise TextSpaceMismatch(f"text features are off for this collection: {self.reason}")
        out = self.embedder.encode_texts([text])
        return np.asarray(out[0], dtype=np.float32)

    async def encode(self, text: str) -> Vector:
        return await run_in_threadpool(self.encode_sync, text)

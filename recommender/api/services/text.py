"""The CLIP text encoder behind search and text warm starts, loaded once per process.

Text features only make sense when the loaded model made the collection's vectors: a text
embedding from another model (or for imported vectors of unknown origin) lives in another
space and would return noise, so the service refuses instead (409), and says why.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
from starlette.concurrency import run_in_threadpool

from indexer.embedder.text import TextEmbedder
from indexer.errors import SumoError
from indexer.settings import CorpusSettings
from indexer.store.base import CollectionSpec, Store, Vector
from recommender.api.errors import TextEncoderUnavailable, TextSpaceMismatch
from recommender.api.schemas import ModelStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    embedder: TextEmbedder | None
    status: ModelStatus
    reason: str = ""


def load(
    settings: CorpusSettings, spec: CollectionSpec | None, embedder: TextEmbedder | None = None
) -> Loaded:
    """Use ``embedder`` if given, else load the model that made the collection (the one it
    records, whatever the settings name). Never raises: a missing model only disables text
    features."""
    if spec is None:
        return Loaded(None, ModelStatus.NOT_NEEDED, "no collection yet: nothing to search")
    if embedder is None and spec.imported:
        return Loaded(None, ModelStatus.NOT_NEEDED,
                      f"the collection holds imported vectors ({spec.model}); "
                      f"no text encoder matches them")
    if embedder is None:
        try:
            from indexer.embedder import load_embedder
            from indexer.embedder.registry import settings_for

            embedder = load_embedder(settings_for(spec, settings))
        except SumoError as exc:  # WeightsMissing and friends
            log.warning("text encoder not loaded: %s", exc)
            return Loaded(None, ModelStatus.UNAVAILABLE, str(exc))
    have = embedder.spec()
    if have != spec:
        return Loaded(embedder, ModelStatus.NOT_NEEDED,
                      f"the collection was made by {spec.model} ({spec.dim}-d), "
                      f"the loaded model is {have.model} ({have.dim}-d)")
    return Loaded(embedder, ModelStatus.LOADED)


class TextService:
    """Decides once whether text features work for the collection. When the store has no
    collection yet (API replicas started before the first index run), it decides again as
    soon as one appears, so a deployment needs no restart after indexing."""

    def __init__(
        self, settings: CorpusSettings, store: Store, embedder: TextEmbedder | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.given = embedder
        self._lock = threading.Lock()
        self.loaded = load(settings, store.spec(), embedder)
        self._pending = store.spec() is None

    @property
    def embedder(self) -> TextEmbedder | None:
        return self.loaded.embedder

    @property
    def status(self) -> ModelStatus:
        return self.loaded.status

    @property
    def reason(self) -> str:
        return self.loaded.reason

    def refresh(self) -> None:
        """Blocking (may load the model). Cheap once a collection has been seen."""
        if not self._pending:
            return
        with self._lock:
            spec = self.store.spec() if self._pending else None
            if spec is not None:
                self.loaded = load(self.settings, spec, self.given)
                self._pending = False

    @property
    def usable(self) -> bool:
        return self.status is ModelStatus.LOADED and self.embedder is not None

    def encode_sync(self, text: str) -> Vector:
        self.refresh()
        if not self.usable or self.embedder is None:
            if self.status is ModelStatus.UNAVAILABLE:
                raise TextEncoderUnavailable(f"text features are unavailable: {self.reason}")
            raise TextSpaceMismatch(f"text features are off for this collection: {self.reason}")
        out = self.embedder.encode_texts([text])
        return np.asarray(out[0], dtype=np.float32)

    async def encode(self, text: str) -> Vector:
        return await run_in_threadpool(self.encode_sync, text)

"""One store interface, two backends (Qdrant Edge in-process, Qdrant server by URL).

Everything above this module speaks in SUMO item ids (strings). Backends map them to
Qdrant point ids deterministically (``point_id``), keep the item id in the payload, and
translate filters and queries into Qdrant's own operations: policies that name a Qdrant
query (recommend, relevance feedback, MMR, random sample) get Qdrant's implementation,
not a re-implementation.

Two kinds of data live side by side:
- **items**: one vector per item plus a JSON payload (paths, sizes, metadata);
- **documents**: small versioned JSON bodies by key in a named namespace (e.g. ``users``),
  with compare-and-set writes so stateless API replicas never lose an update.
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self, TypeVar

import numpy as np
from numpy.typing import NDArray

from indexer.errors import ConflictError

Vector = NDArray[np.float32]
Beams = int | Sequence[int | None] | None  # search beams: one for a batch, or one per query
T = TypeVar("T")
# Compare-and-set attempts before ``update_document`` gives up with ``ConflictError``.
CAS_ATTEMPTS = 64

# The model a collection of imported vectors records: ``import:<name>`` (no CLIP made them).
IMPORT_PREFIX = "import:"

# Fixed namespace so the same item id maps to the same point id on every machine.
_POINT_NAMESPACE = uuid.UUID("5a3c1f0e-8b7d-4c2a-9e61-2f0d5b9c7a11")
ITEM_ID_KEY = "item_id"


_NAMESPACE_BYTES = _POINT_NAMESPACE.bytes


def beams(ef: Beams, n: int) -> list[int | None]:
    """``search_many``'s ``ef`` as one beam per query."""
    if ef is None or isinstance(ef, int):
        return [ef] * n
    if len(ef) != n:
        raise ValueError(f"{len(ef)} search beams for {n} queries")
    return list(ef)


@functools.lru_cache(maxsize=1 << 18)
def point_id(item_id: str) -> str:
    """The Qdrant point id (a UUID string) of an item or document key.

    Exactly ``str(uuid.uuid5(_POINT_NAMESPACE, item_id))``, computed without the UUID
    object and cached: every query excluding a user's seen ids maps them all, and the same
    ids come back request after request.
    """
    h = bytearray(hashlib.sha1(_NAMESPACE_BYTES + item_id.encode("utf-8")).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


@dataclass(frozen=True)
class CollectionSpec:
    """What made the vectors: refusing a different model keeps spaces from mixing."""

    dim: int
    model: str  # e.g. "ViT-B-32/laion2b_s34b_b79k", or "import:<name>" for imported vectors

    @property
    def imported(self) -> bool:
        """Imported vectors of their own origin: no text encoder here shares their space."""
        return self.model.startswith(IMPORT_PREFIX)


@dataclass
class Item:
    id: str
    vector: Vector | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: Mapping[str, Any] | None = None
    vector: Vector | None = None


@dataclass(frozen=True)
class Document:
    key: str
    version: int  # 0 never stored; each successful put increments by one
    body: dict[str, Any]


class RecommendStrategy(StrEnum):
    AVERAGE_VECTOR = "average_vector"
    BEST_SCORE = "best_score"
    SUM_SCORES = "sum_scores"


@dataclass(frozen=True)
class FeedbackPair:
    """One (positive, negative) example for Qdrant's relevance-feedback query."""

    positive: Vector
    negative: Vector
    confidence: float = 1.0  # s_pos - s_neg, in [0, 1]


@dataclass(frozen=True)
class FeedbackParams:
    """score = a·sim(target, x) + Σ c·confidence^b·(sim(pos, x) − sim(neg, x))."""

    a: float = 1.0
    b: float = 1.0
    c: float = 1.0


DEFAULT_FEEDBACK_PARAMS = FeedbackParams()


class Store(ABC):
    """A corpus collection of items plus versioned document namespaces."""

    #: Calls run in this process and are CPU-bound (no network wait), so a caller on an
    #: event loop may make them inline: a thread-pool hop would cost more than the call.
    in_process: bool = False

    # --- lifecycle and schema ------------------------------------------------------------
    @abstractmethod
    def ensure_collection(self, spec: CollectionSpec) -> CollectionSpec:
        """Create the items collection for ``spec`` or check that it matches.

        Raises ``CollectionMismatch`` when the existing collection was built with a
        different model or dimension. Returns the stored spec.
        """

    @abstractmethod
    def spec(self) -> CollectionSpec | None:
        """The stored spec, or ``None`` when the collection does not exist yet."""

    @abstractmethod
    def count(self) -> int: ...

    def optimize(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Build indexes after bulk writes (Edge builds HNSW only here). No-op by default."""

    def flush(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Make acknowledged writes durable. No-op where the backend already is."""

    def warm(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Bring what serving users needs into memory, once, before a service starts taking
        requests (commands that only index or read need not pay for it). No-op by default."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- items ---------------------------------------------------------------------------
    @abstractmethod
    def upsert(self, items: Sequence[Item]) -> None:
        """Insert or replace items (vector and payload). Items without a vector are invalid."""

    @abstractmethod
    def set_payload(self, item_id: str, payload: Mapping[str, Any]) -> None:
        """Merge keys into one item's payload, leaving its vector untouched."""

    @abstractmethod
    def delete(self, item_ids: Collection[str]) -> None: ...

    @abstractmethod
    def retrieve(self, item_ids: Sequence[str], *, with_vectors: bool = False) -> list[Item]:
        """Items in the order asked for; missing ids are left out."""

    @abstractmethod
    def scroll(
        self, *, with_vectors: bool = False, with_payload: bool = True, batch: int = 1024
    ) -> Iterator[Item]:
        """Every item, in batches under the hood."""

    @property
    def revision(self) -> int | None:
        """A number that changes with every item written or deleted, for callers that keep
        answers derived from the items: only a store that sees every write can give one
        (a folder this process alone opens). ``None``: others may write (a server)."""
        return None

    # --- queries (all exclude ``exclude`` ids and return at most ``limit`` hits) ---------
    # ``ef``: the HNSW search beam (``None``: the store's own); a wider one finds more of
    # the true neighbours of a query far from any item, for more time. ``exact``: compare
    # every vector. A store built for exact search is exact whatever is asked.
    @abstractmethod
    def search(
        self, vector: Vector, limit: int, *, exclude: Collection[str] = (),
        with_payload: bool = False, with_vectors: bool = False, ef: int | None = None,
        exact: bool = False,
    ) -> list[Hit]:
        """Nearest neighbours by cosine similarity, best first."""

    def search_many(
        self, vectors: Sequence[Vector], limit: int, *, exclude: Collection[str] = (),
        with_vectors: bool = False, ef: Beams = None, exact: bool = False,
    ) -> list[list[Hit]]:
        """Several nearest-neighbour queries; backends may batch them (one round trip).
        ``ef`` is one beam for all or one per query."""
        return [self.search(v, limit, exclude=exclude, with_vectors=with_vectors, ef=e,
                            exact=exact)
                for v, e in zip(vectors, beams(ef, len(vectors)), strict=True)]

    @abstractmethod
    def search_mmr(
        self, vector: Vector, limit: int, *, diversity: float = 0.5, candidates: int = 100,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        """Qdrant's maximal-marginal-relevance query: near ``vector`` but unlike each other."""

    @abstractmethod
    def recommend(
        self, positive: Sequence[Vector], negative: Sequence[Vector], limit: int, *,
        strategy: RecommendStrategy = RecommendStrategy.AVERAGE_VECTOR,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        """Qdrant's recommend query."""

    @abstractmethod
    def relevance_feedback(
        self, target: Vector, pairs: Sequence[FeedbackPair], limit: int, *,
        params: FeedbackParams = DEFAULT_FEEDBACK_PARAMS, exclude: Collection[str] = (),
    ) -> list[Hit]:
        """Qdrant's relevance-feedback query (Qdrant 1.17), exactly the formula above.

        Any number of pairs; see ``common.feedback_direction`` for how they reach Qdrant.
        """

    @abstractmethod
    def sample(
        self, limit: int, *, exclude: Collection[str] = (), seed: int | None = None
    ) -> list[Hit]:
        """Random items: Qdrant's random sample query; with a ``seed``, a reproducible one."""

    # --- documents -----------------------------------------------------------------------
    @abstractmethod
    def get_document(self, namespace: str, key: str) -> Document | None: ...

    @abstractmethod
    def put_document(
        self, namespace: str, key: str, body: Mapping[str, Any], *, expected_version: int
    ) -> Document:
        """Write ``body`` only if the stored version is ``expected_version`` (0: absent).

        Raises ``ConflictError`` when another writer got there first.
        """

    @abstractmethod
    def delete_document(self, namespace: str, key: str) -> bool: ...

    @abstractmethod
    def scroll_documents(self, namespace: str, *, batch: int = 512) -> Iterator[Document]: ...

    def update_document(
        self, namespace: str, key: str,
        change: Callable[[Document | None], tuple[T, Mapping[str, Any] | None]], *,
        attempts: int = CAS_ATTEMPTS,
    ) -> T:
        """Read-modify-write one document under compare-and-set, retried until it sticks.

        ``change`` gets the fresh document (``None``: absent) and returns ``(result, body)``;
        ``body`` is written only if nobody wrote in between, ``None`` writes nothing. On a
        lost race the document is re-read and ``change`` applied again, after a short random
        back-off so racing writers stop colliding in lockstep. After ``attempts`` lost races
        it raises ``ConflictError``: an update is never dropped silently.
        """
        for attempt in range(attempts):
            doc = self.get_document(namespace, key)
            result, body = change(doc)
            if body is None:
                return result
            try:
                self.put_document(namespace, key, body,
                                  expected_version=doc.version if doc is not None else 0)
                return result
            except ConflictError:
                if attempt + 1 < attempts:
                    time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
        raise ConflictError(
            f"document {namespace}/{key}: lost {attempts} concurrent updates in a row; retry"
        )

"""Server backend: a Qdrant server or cluster by URL, through ``qdrant-client``.

``url`` is a server URL (``http://host:6333``), or, for tests and small experiments, one of
qdrant-client's local modes: ``:memory:`` or ``path:/some/dir``. A ready ``QdrantClient``
can be passed as ``client=`` instead.

Two collections per SUMO collection: ``<name>`` (items, cosine vectors; the model and
dimension are kept in Qdrant's collection metadata) and ``<name>_documents`` (vector-less,
versioned JSON documents). On a cluster (``/cluster`` lists more than one peer) both are
created with one shard per peer and replication factor 2.

Every call is one or a few HTTP requests and nothing broken is cached: when the server is
down a call raises ``StoreUnavailable`` (the API answers 503), and the next call after the
server is back simply works.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import httpx
import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from indexer.errors import ConflictError, NotFound, StoreUnavailable
from indexer.store import common
from indexer.store.base import (
    DEFAULT_FEEDBACK_PARAMS,
    ITEM_ID_KEY,
    Beams,
    CollectionSpec,
    Document,
    FeedbackPair,
    FeedbackParams,
    Hit,
    Item,
    RecommendStrategy,
    Store,
    Vector,
    beams,
    point_id,
)

DOCUMENTS_SUFFIX = "_documents"
_STRATEGY = {
    RecommendStrategy.AVERAGE_VECTOR: qm.RecommendStrategy.AVERAGE_VECTOR,
    RecommendStrategy.BEST_SCORE: qm.RecommendStrategy.BEST_SCORE,
    RecommendStrategy.SUM_SCORES: qm.RecommendStrategy.SUM_SCORES,
}


def make_client(url: str, api_key: str | None = None, timeout: int = 30) -> QdrantClient:
    if url == ":memory:":
        return QdrantClient(location=":memory:")
    if url.startswith("path:"):
        try:
            return QdrantClient(path=url.removeprefix("path:"))
        except RuntimeError as exc:  # local mode locks its folder like Edge does
            raise StoreUnavailable(f"cannot open the Qdrant local store {url}: {exc}") from exc
    # No version probe at start-up: a server that is down must not stop the app starting.
    return QdrantClient(url=url, api_key=api_key, timeout=timeout, check_compatibility=False)


class ServerStore(Store):
    """A SUMO store in a Qdrant server or cluster."""

    def __init__(
        self, url: str = ":memory:", api_key: str | None = None,
        collection: str = "sumo_items", *, client: QdrantClient | None = None,
        timeout: int = 30,
    ) -> None:
        self.url = url
        self.collection = collection
        self.documents = collection + DOCUMENTS_SUFFIX
        self._local = client is None and (url == ":memory:" or url.startswith("path:"))
        self.client = client if client is not None else make_client(url, api_key, timeout)
        self._spec: CollectionSpec | None = None  # cached once seen; specs never change
        self._docs_ready = False
        self._create = threading.Lock()
        # A Qdrant server applies a conditional upsert atomically per point; qdrant-client's
        # local mode checks the filter and then writes, in Python, with no lock, so two
        # threads can both pass the check and one write is lost, and a reader can see a
        # payload half rewritten. In local mode document reads and writes are serialised
        # here instead.
        self._doc_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self._local else contextlib.nullcontext())

    # --- error mapping -----------------------------------------------------------------
    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except (ResponseHandlingException, httpx.TransportError, ConnectionError) as exc:
            raise StoreUnavailable(f"Qdrant at {self.url} is unreachable: {exc}") from exc
        except UnexpectedResponse as exc:
            if exc.status_code is not None and exc.status_code >= 500:
                raise StoreUnavailable(
                    f"Qdrant at {self.url} answered {exc.status_code} {exc.reason_phrase}"
                ) from exc
            raise

    # --- lifecycle ---------------------------------------------------------------------
    def _peers(self) -> int:
        if self._local:
            return 1
        try:
            status = self.client.cluster_status()
        except NotImplementedError:
            return 1
        peers = getattr(status, "peers", None)
        return len(peers) if peers else 1

    def _sharding(self) -> dict[str, Any]:
        peers = self._peers()
        if peers > 1:
            # One shard per peer spreads the load; two replicas survive one peer's loss.
            return {"shard_number": peers, "replication_factor": 2}
        return {}

    def _create_collection(self, name: str, **kwargs: Any) -> bool:
        """Create ``name``; False when another replica created it first."""
        try:
            self.client.create_collection(name, **kwargs, **self._sharding())
            return True
        except UnexpectedResponse as exc:
            if exc.status_code == 409 or "already exists" in str(exc.content):
                return False
            raise
        except ValueError as exc:  # local mode
            if "already exists" in str(exc):
                return False
            raise

    def _read_spec(self) -> CollectionSpec | None:
        if not self.client.collection_exists(self.collection):
            return None
        info = self.client.get_collection(self.collection)
        spec = common.spec_from_dict(info.config.metadata)
        if spec is None:
            params = info.config.params.vectors
            dim = params.size if isinstance(params, qm.VectorParams) else 0
            # Made outside SUMO: the model is unknown, so nothing may be mixed into it.
            return CollectionSpec(dim=dim, model="unknown (collection not made by SUMO)")
        return spec

    def spec(self) -> CollectionSpec | None:
        if self._spec is None:
            with self._guard():
                self._spec = self._read_spec()
        return self._spec

    def ensure_collection(self, spec: CollectionSpec) -> CollectionSpec:
        where = f"{self.collection!r} at {self.url}"
        stored = self.spec()
        if stored is not None:
            return common.check_spec(stored, spec, where)
        with self._create, self._guard():
            self._create_collection(
                self.collection,
                vectors_config=qm.VectorParams(size=spec.dim, distance=qm.Distance.COSINE),
                hnsw_config=qm.HnswConfigDiff(ef_construct=common.HNSW_EF_CONSTRUCT),
                quantization_config=_QUANTIZATION,
                metadata=common.spec_to_dict(spec),
            )
            stored = self._read_spec()
        assert stored is not None
        self._spec = common.check_spec(stored, spec, where)
        return self._spec

    def _ready(self) -> bool:
        return self.spec() is not None

    def count(self) -> int:
        if not self._ready():
            return 0
        with self._guard():
            return int(self.client.count(self.collection, exact=True).count)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    def __repr__(self) -> str:
        return f"ServerStore({self.url!r}, collection={self.collection!r})"

    # --- items -------------------------------------------------------------------------
    def _require(self) -> CollectionSpec:
        spec = self.spec()
        if spec is None:
            raise NotFound(
                f"collection {self.collection!r} at {self.url} does not exist yet; "
                f"run `sumo index` or `sumo import` first"
            )
        return spec

    def upsert(self, items: Sequence[Item]) -> None:
        dim = self._require().dim
        points = []
        for it in items:
            if it.vector is None:
                raise ValueError(f"item {it.id!r} has no vector")
            points.append(qm.PointStruct(
                id=point_id(it.id), vector=common.as_vector(it.vector, dim).tolist(),
                payload={**it.payload, ITEM_ID_KEY: it.id},
            ))
        if points:
            with self._guard():
                self.client.upsert(self.collection, points, wait=True)

    def set_payload(self, item_id: str, payload: Mapping[str, Any]) -> None:
        self._require()
        pid = point_id(item_id)
        with self._guard():
            # Local mode ignores a missing point where a server answers 404: ask first.
            if not self.client.retrieve(self.collection, [pid], with_payload=False):
                raise NotFound(f"no item {item_id!r}")
            self.client.set_payload(self.collection, dict(payload), points=[pid], wait=True)

    def delete(self, item_ids: Collection[str]) -> None:
        if not item_ids or not self._ready():
            return
        with self._guard():
            self.client.delete(
                self.collection, qm.PointIdsList(points=[point_id(i) for i in item_ids]), wait=True
            )

    def retrieve(self, item_ids: Sequence[str], *, with_vectors: bool = False) -> list[Item]:
        if not item_ids or not self._ready():
            return []
        with self._guard():
            records = self.client.retrieve(
                self.collection, [point_id(i) for i in item_ids], with_payload=True,
                with_vectors=with_vectors,
            )
        return common.items_in_order(records, item_ids, with_vectors)

    def scroll(
        self, *, with_vectors: bool = False, with_payload: bool = True, batch: int = 1024
    ) -> Iterator[Item]:
        if not self._ready():
            return
        selector: Any = True if with_payload else [ITEM_ID_KEY]

        def page(offset: Any) -> tuple[list[qm.Record], Any]:
            with self._guard():
                return self.client.scroll(self.collection, limit=batch, offset=offset,
                                          with_payload=selector, with_vectors=with_vectors)

        for r in common.paged(page):
            yield common.item_of(r, with_vectors=with_vectors, with_payload=with_payload)

    # --- queries -----------------------------------------------------------------------
    @staticmethod
    def _filter(exclude: Collection[str]) -> qm.Filter | None:
        if not exclude:
            return None
        ids: list[qm.ExtendedPointId] = list(common.excluded_point_ids(exclude))
        return qm.Filter(must_not=[qm.HasIdCondition(has_id=ids)])

    def _query(
        self, query: Any, limit: int, exclude: Collection[str], with_payload: bool = False,
        with_vectors: bool = False, params: qm.SearchParams | None = None,
    ) -> list[Hit]:
        if limit <= 0 or not self._ready():
            return []
        with self._guard():
            res = self.client.query_points(
                self.collection, query=query, limit=limit, query_filter=self._filter(exclude),
                with_payload=True if with_payload else [ITEM_ID_KEY], with_vectors=with_vectors,
                search_params=params,
            )
        return common.hits_of(res.points, with_payload, with_vectors)

    def _vector(self, v: Vector) -> list[float]:
        spec = self.spec()
        out: list[float] = common.as_vector(v, spec.dim if spec else None).tolist()
        return out

    def search(
        self, vector: Vector, limit: int, *, exclude: Collection[str] = (),
        with_payload: bool = False, with_vectors: bool = False, ef: int | None = None,
        exact: bool = False,
    ) -> list[Hit]:
        return self._query(
            qm.NearestQuery(nearest=self._vector(vector)), limit, exclude, with_payload,
            with_vectors, _search_params(ef, exact),
        )

    def search_many(
        self, vectors: Sequence[Vector], limit: int, *, exclude: Collection[str] = (),
        with_vectors: bool = False, ef: Beams = None, exact: bool = False,
    ) -> list[list[Hit]]:
        if limit <= 0 or not vectors or not self._ready():
            return [[] for _ in vectors]
        flt = self._filter(exclude)
        requests = [
            qm.QueryRequest(query=qm.NearestQuery(nearest=self._vector(v)), filter=flt,
                            limit=limit, with_payload=[ITEM_ID_KEY], with_vector=with_vectors,
                            params=_search_params(e, exact))
            for v, e in zip(vectors, beams(ef, len(vectors)), strict=True)
        ]
        with self._guard():
            responses = self.client.query_batch_points(self.collection, requests)
        return [common.hits_of(r.points, False, with_vectors) for r in responses]

    def search_mmr(
        self, vector: Vector, limit: int, *, diversity: float = 0.5, candidates: int = 100,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        v = self._vector(vector)
        q = qm.NearestQuery(
            nearest=v, mmr=qm.Mmr(diversity=float(diversity),
                                  candidates_limit=max(candidates, limit)),
        )
        hits = self._query(q, limit, exclude, with_vectors=True)
        return common.rescore_by_similarity(hits, np.asarray(v, np.float32), keep_vectors=False)

    def recommend(
        self, positive: Sequence[Vector], negative: Sequence[Vector], limit: int, *,
        strategy: RecommendStrategy = RecommendStrategy.AVERAGE_VECTOR,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        strategy = RecommendStrategy(strategy)
        if strategy is RecommendStrategy.AVERAGE_VECTOR and not positive:
            raise ValueError("the average_vector strategy needs at least one positive example")
        q = qm.RecommendQuery(recommend=qm.RecommendInput(
            positive=[self._vector(v) for v in positive],
            negative=[self._vector(v) for v in negative],
            strategy=_STRATEGY[strategy],
        ))
        return self._query(q, limit, exclude)

    def relevance_feedback(
        self, target: Vector, pairs: Sequence[FeedbackPair], limit: int, *,
        params: FeedbackParams = DEFAULT_FEEDBACK_PARAMS, exclude: Collection[str] = (),
    ) -> list[Hit]:
        feedback: list[qm.FeedbackItem] = []
        direction = common.feedback_direction(pairs, params)
        if direction is not None:
            u, score, params = direction
            feedback = [qm.FeedbackItem(example=self._vector(u), score=score),
                        qm.FeedbackItem(example=self._vector(-u), score=0.0)]
        q = qm.RelevanceFeedbackQuery(relevance_feedback=qm.RelevanceFeedbackInput(
            target=self._vector(target), feedback=feedback,
            strategy=qm.NaiveFeedbackStrategy(
                naive=qm.NaiveFeedbackStrategyParams(a=params.a, b=params.b, c=params.c)
            ),
        ))
        return self._query(q, limit, exclude)

    def sample(
        self, limit: int, *, exclude: Collection[str] = (), seed: int | None = None
    ) -> list[Hit]:
        if seed is None:
            return self._query(qm.SampleQuery(sample=qm.Sample.RANDOM), limit, exclude)
        if limit <= 0 or not self._ready():
            return []
        flt = self._filter(exclude)

        def scroll_from(offset: str | None, n: int) -> list[qm.Record]:
            with self._guard():
                records, _ = self.client.scroll(self.collection, scroll_filter=flt, limit=n,
                                                offset=offset, with_payload=[ITEM_ID_KEY])
            return records

        return common.seeded_sample(scroll_from, limit, seed)

    # --- documents ---------------------------------------------------------------------
    def _documents(self) -> str:
        if not self._docs_ready:
            with self._create, self._guard():
                if not self.client.collection_exists(self.documents):
                    created = self._create_collection(self.documents, vectors_config={})
                    if created and not self._local:
                        self.client.create_payload_index(
                            self.documents, common.DOC_NAMESPACE, qm.PayloadSchemaType.KEYWORD
                        )
                self._docs_ready = True
        return self.documents

    def _doc_payload(self, pid: str) -> dict[str, Any] | None:
        with self._guard():
            records = self.client.retrieve(
                self._documents(), [pid], with_payload=True,
                # Read what the majority of replicas acknowledged, not a lagging one.
                consistency=None if self._local else qm.ReadConsistencyType.MAJORITY,
            )
        return dict(records[0].payload or {}) if records else None

    def get_document(self, namespace: str, key: str) -> Document | None:
        with self._doc_lock:  # local mode: never read a payload while it is rewritten
            payload = self._doc_payload(common.document_point_id(namespace, key))
        return common.document_from_payload(payload) if payload else None

    def put_document(
        self, namespace: str, key: str, body: Mapping[str, Any], *, expected_version: int
    ) -> Document:
        """Conditional upsert (Qdrant ``update_filter`` / ``update_mode``), then read-back.

        Qdrant applies the condition atomically but does not say whether it matched, so the
        write carries a nonce and the document keeps its last few (version, nonce) pairs:
        finding ours there means we won, even if others already wrote on top.
        """
        with self._doc_lock:
            return self._put_document(namespace, key, body, expected_version)

    def _put_document(
        self, namespace: str, key: str, body: Mapping[str, Any], expected_version: int
    ) -> Document:
        body = common.json_safe(body)
        pid = common.document_point_id(namespace, key)
        name = self._documents()
        current = self._doc_payload(pid)
        stored = int(current[common.DOC_VERSION]) if current else 0
        if stored != expected_version:
            raise ConflictError(
                f"document {namespace}/{key} is at version {stored}, not {expected_version}; "
                f"re-read it and retry"
            )
        version, nonce = expected_version + 1, uuid.uuid4().hex
        point = qm.PointStruct(
            id=pid, vector={},
            payload=common.document_payload(namespace, key, body, version, nonce, current),
        )
        with self._guard():
            if expected_version == 0:
                self.client.upsert(
                    name, [point], wait=True, ordering=qm.WriteOrdering.STRONG,
                    update_mode=qm.UpdateMode.INSERT_ONLY,
                )
            else:
                same = qm.Filter(must=[qm.FieldCondition(
                    key=common.DOC_VERSION, match=qm.MatchValue(value=expected_version))])
                self.client.upsert(
                    name, [point], wait=True, ordering=qm.WriteOrdering.STRONG,
                    update_filter=same, update_mode=qm.UpdateMode.UPDATE_ONLY,
                )
        if not common.wrote(self._doc_payload(pid), version, nonce):
            raise ConflictError(
                f"document {namespace}/{key} was changed by another writer; re-read and retry"
            )
        return Document(key, version, body)

    def delete_document(self, namespace: str, key: str) -> bool:
        pid = common.document_point_id(namespace, key)
        if self._doc_payload(pid) is None:
            return False
        with self._guard():
            self.client.delete(
                self._documents(), qm.PointIdsList(points=[pid]), wait=True,
                ordering=qm.WriteOrdering.STRONG,
            )
        return True

    def scroll_documents(self, namespace: str, *, batch: int = 512) -> Iterator[Document]:
        name = self._documents()
        flt = qm.Filter(must=[qm.FieldCondition(
            key=common.DOC_NAMESPACE, match=qm.MatchValue(value=namespace))])

        def page(offset: Any) -> tuple[list[qm.Record], Any]:
            with self._guard():
                return self.client.scroll(name, scroll_filter=flt, limit=batch, offset=offset,
                                          with_payload=True)

        for r in common.paged(page):
            yield common.document_from_payload(r.payload or {})


_QUANTIZATION = qm.ScalarQuantization(scalar=qm.ScalarQuantizationConfig(
    type=qm.ScalarType.INT8, quantile=common.QUANTILE, always_ram=True))
_RESCORED = qm.QuantizationSearchParams(rescore=True, oversampling=common.OVERSAMPLING)


def _search_params(ef: int | None, exact: bool) -> qm.SearchParams:
    """Qdrant's search parameters for a beam (``None``: the server's default); exact means
    every full vector, the int8 copy ignored."""
    if exact:
        return qm.SearchParams(exact=True, quantization=qm.QuantizationSearchParams(ignore=True))
    return qm.SearchParams(hnsw_ef=ef, quantization=_RESCORED)

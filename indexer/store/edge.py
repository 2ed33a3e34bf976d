"""Embedded backend: Qdrant Edge, the Qdrant engine in-process, in a data folder.

Layout of ``<data>/<collection>/``:

- ``spec.json``  which model and dimension made the vectors (written before the shard);
- ``items/``     the items shard (dense cosine vectors + payload);
- ``documents/`` every document namespace in one vector-less (sparse-only) shard, keyed
  by namespace and key;
- ``.lock``      an advisory lock held while the store is open.

Edge allows one writer per folder, so the store takes an exclusive ``flock`` on ``.lock``
and a second process gets ``StoreUnavailable`` naming the holder, instead of Edge's bare
``WouldBlock``. Within the process one lock serialises writes, which is what lets document
compare-and-set be exact here.

Durability: Edge's write-ahead log is on, and ``update`` returns after the WAL write, so an
acknowledged write survives SIGKILL of the process (it is replayed on the next open);
``flush()`` makes segments durable against power loss too, and ``close()`` flushes.
Edge builds its HNSW index only in ``optimize()``: call it after bulk loads.

Search: the items keep an int8 copy of every vector in RAM (``common.QUANTILE``); the HNSW
walk compares those, a quarter of the bytes per step, and the best ``common.OVERSAMPLING``
times ``limit`` found are scored again with the full vectors; the graph is built with a
beam of ``common.HNSW_EF_CONSTRUCT``. A store made before either gains it at its next
``optimize()``.

Space: every document write appends the whole body to the write-ahead log and to the
payload storage, and Edge reuses neither until a flush (the log is truncated, freed payload
blocks become reusable). So the writer that brings the document bodies written since the
last flush to ``FLUSH_BYTES`` flushes the documents shard (~18 ms, once per 4 MB): the
space old versions hold stays bounded by that however fast one user writes, instead of
growing with the writes between the service's timed flushes. Each flush of the documents shard is
followed by Edge's optimizer, set to vacuum a segment once ``VACUUM_DELETED`` of its points
are deleted (deleted users), which rewrites the live documents into a fresh segment.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import threading
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import qdrant_edge as qe

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

log = logging.getLogger("sumo.store")

SPEC_FILE = "spec.json"
ITEMS_DIR = "items"
DOCUMENTS_DIR = "documents"
LOCK_FILE = ".lock"
HNSW_EF_SEARCH = 256
_QUANTIZATION = qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=common.QUANTILE,
                                            always_ram=True)
_RESCORED = qe.QuantizationSearchParams(rescore=True, oversampling=common.OVERSAMPLING)
# Exact means every full vector: the int8 copy would make a scan approximate again.
_EXACT_PARAMS = qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True))


@functools.lru_cache(maxsize=16)
def _beam(ef: int) -> qe.SearchParams:
    return qe.SearchParams(hnsw_ef=ef, quantization=_RESCORED)


_SEARCH_PARAMS = _beam(HNSW_EF_SEARCH)

_DOC_SPARSE = "none"  # the documents shard needs some vector config; it stores none
KNOWN_VERSIONS = 1 << 16  # document versions remembered (~100 bytes each), then forgotten
PREWARM_BYTES = 256 << 20  # of user documents read back into the page cache by warm()
# Of document bodies written between flushes of the documents shard. A flush costs ~10 ms
# plus ~1 ms per MB written since the last, and every request behind it waits: 4 MB
# keeps that stall under ~20 ms (32 MB: ~45 ms); research/doc_flush.py, docs/store.md.
FLUSH_BYTES = 4 << 20
VACUUM_DELETED = 0.2  # fraction of deleted documents in a segment that makes it compacted
_DOC_OPTIMIZERS = qe.EdgeOptimizersConfig(
    deleted_threshold=VACUUM_DELETED,
    vacuum_min_vector_number=0,  # Edge's default (1,000) would never compact a small store
)
_DOC_VERSION_ONLY = qe.PayloadSelector.Include([common.DOC_VERSION])


def _unavailable(path: Path, exc: BaseException) -> StoreUnavailable:
    hint = ""
    if "WouldBlock" in str(exc):  # Edge's own WAL lock: someone else has the folder open
        hint = (". Edge allows one process per folder; stop the other process, or share a "
                "Qdrant server (--qdrant-url)")
    return StoreUnavailable(f"cannot open the Qdrant Edge store at {path}: {exc}{hint}")


def _lock_folder(root: Path) -> IO[str]:
    f = open(root / LOCK_FILE, "a+")  # noqa: SIM115 - held open for the store's lifetime
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise StoreUnavailable(
            f"the store at {root} is in use by another process (pid {holder}); Qdrant Edge "
            f"allows one writer per folder. Stop that process, or run both against a "
            f"Qdrant server with --qdrant-url"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def _open_shard(
    path: Path, config: qe.EdgeConfig, *, reconfigure: bool = False
) -> qe.EdgeShard:
    """Open (or create) a shard; ``reconfigure``: apply ``config`` to an existing one too
    (settings such as the optimizers; what the data is, Edge checks for compatibility)."""
    try:
        if (path / "edge_config.json").exists():
            return qe.EdgeShard.load(str(path), config if reconfigure else None)
        return qe.EdgeShard.create(str(path), config)
    except Exception as exc:  # Edge raises plain Exception, e.g. "Can't init WAL: WouldBlock"
        raise _unavailable(path, exc) from exc


def _prewarm(folder: Path, budget: int) -> None:
    """Read a shard's segment files once, up to ``budget`` bytes.

    Qdrant drops a closed segment's pages from the page cache, so after a restart every
    user-state write would fault in the pages it lands on; one sequential read brings them
    back, as a database's pre-warm does. The service does it before taking requests (a
    background read would compete with the first queries), within a budget so that a large
    store still starts quickly."""
    left = budget
    with contextlib.suppress(OSError):
        for f in sorted(folder.rglob("*")):
            if left <= 0:
                return
            if not f.is_file():
                continue
            with f.open("rb", buffering=0) as fh:
                while left > 0 and (chunk := fh.read(1 << 22)):
                    left -= len(chunk)


@functools.lru_cache(maxsize=1 << 16)
def _point_uuid(item_id: str) -> uuid.UUID:
    """``point_id(item_id)`` as a UUID object: Edge converts these faster than strings, and
    every query excluding a user's seen items sends them all."""
    return uuid.UUID(point_id(item_id))


def _ev(v: Vector) -> list[float]:
    """Vectors go to Edge as lists: pyo3 converts a list faster than an array."""
    out: list[float] = v.tolist()
    return out


class EdgeStore(Store):
    """A SUMO store in a local folder, served by Qdrant Edge in this process."""

    in_process = True

    def __init__(
        self, data_dir: str | os.PathLike[str], collection: str = "sumo_items", *,
        exact: bool = False,
    ) -> None:
        """``exact``: compare every vector instead of walking the HNSW graph. Slower, but
        the same answers from every build of the same data (the graph's construction is
        randomised): simulations that compare two variants of a policy need that."""
        self.root = Path(data_dir).expanduser().absolute() / collection
        self.collection = collection
        self._params = _EXACT_PARAMS if exact else _SEARCH_PARAMS
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file: IO[str] | None = _lock_folder(self.root)
        self._write = threading.RLock()
        self._items: qe.EdgeShard | None = None
        self._docs: qe.EdgeShard | None = None
        self._unflushed = 0  # bytes of document bodies written since the last flush
        self._revision = 0  # items written or deleted through this object (the only writer)
        # Versions this process wrote, by point id: as the only writer it knows them, so a
        # compare-and-set need not read the stored version back (one retrieve per write).
        self._versions: dict[str, int] = {}
        try:
            self._spec = self._read_spec()
            if self._spec is not None:
                # Reconfigured: a store made before the index's current layout (the int8
                # copy, the build beam) is rebuilt to it at its next optimize().
                self._items = _open_shard(self.root / ITEMS_DIR, self._items_config(self._spec),
                                          reconfigure=True)
            self._docs = self._open_documents()
        except BaseException:
            self.close()
            raise

    # --- lifecycle ---------------------------------------------------------------------
    def _read_spec(self) -> CollectionSpec | None:
        path = self.root / SPEC_FILE
        if not path.exists():
            return None
        return common.spec_from_dict(json.loads(path.read_text()))

    @staticmethod
    def _items_config(spec: CollectionSpec) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=spec.dim, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=common.HNSW_EF_CONSTRUCT,
                                           full_scan_threshold=10_000),
            quantization_config=_QUANTIZATION,
        )

    def _open_documents(self) -> qe.EdgeShard:
        path = self.root / DOCUMENTS_DIR
        fresh = not (path / "edge_config.json").exists()
        shard = _open_shard(
            path, qe.EdgeConfig(sparse_vectors={_DOC_SPARSE: qe.EdgeSparseVectorParams()},
                                optimizers=_DOC_OPTIMIZERS),
            reconfigure=True,
        )
        if fresh:
            shard.update(qe.UpdateOperation.create_field_index(
                common.DOC_NAMESPACE, qe.PayloadSchemaType.Keyword
            ))
        return shard

    def ensure_collection(self, spec: CollectionSpec) -> CollectionSpec:
        with self._write:
            if self._spec is not None:
                return common.check_spec(self._spec, spec, f"{self.collection!r} in {self.root}")
            # Spec first: a crash before the shard exists leaves a spec that the next open
            # completes, never vectors without a recorded model.
            common.write_json_atomic(self.root / SPEC_FILE, common.spec_to_dict(spec))
            self._items = _open_shard(self.root / ITEMS_DIR, self._items_config(spec))
            self._spec = spec
            return spec

    def spec(self) -> CollectionSpec | None:
        return self._spec

    def count(self) -> int:
        if self._items is None:
            return 0
        return int(self._items.count(qe.CountRequest(exact=True)))

    def optimize(self) -> None:
        with self._write:
            if self._items is not None:
                self._items.optimize()

    def warm(self) -> None:
        _prewarm(self.root / DOCUMENTS_DIR / "segments", PREWARM_BYTES)

    def flush(self) -> None:
        with self._write:
            if self._items is not None:
                self._items.flush()
            self._flush_documents()

    def _flush_documents(self) -> None:
        """Flush the documents shard and compact it if deletions made that due (callers
        hold ``self._write``). Optimizing costs microseconds when nothing is due."""
        if self._docs is not None:
            self._docs.flush()
            self._unflushed = 0
            self._docs.optimize()

    def close(self) -> None:
        with self._write:
            with contextlib.suppress(Exception):
                self._flush_documents()  # a clean stop leaves no space to reclaim
            for shard in (self._items, self._docs):
                if shard is not None:
                    with contextlib.suppress(Exception):
                        shard.flush()
                    shard.close()
            self._items = self._docs = None
            if self._lock_file is not None:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None

    def __repr__(self) -> str:
        return f"EdgeStore({str(self.root.parent)!r}, collection={self.collection!r})"

    # --- items -------------------------------------------------------------------------
    def _shard(self) -> qe.EdgeShard:
        if self._items is None:
            if self._lock_file is None:
                raise StoreUnavailable(f"the store at {self.root} is closed")
            raise NotFound(
                f"collection {self.collection!r} in {self.root.parent} does not exist yet; "
                f"run `sumo index` or `sumo import` first"
            )
        return self._items

    def _dim(self) -> int:
        assert self._spec is not None
        return self._spec.dim

    def upsert(self, items: Sequence[Item]) -> None:
        shard = self._shard()
        dim = self._dim()
        points = []
        for it in items:
            if it.vector is None:
                raise ValueError(f"item {it.id!r} has no vector")
            payload = {**it.payload, ITEM_ID_KEY: it.id}
            points.append(qe.Point(point_id(it.id), _ev(common.as_vector(it.vector, dim)), payload))
        if points:
            with self._write:
                try:
                    shard.update(qe.UpdateOperation.upsert_points(points))
                finally:  # changed, or perhaps changed: either way, not what it was
                    self._revision += 1

    def set_payload(self, item_id: str, payload: Mapping[str, Any]) -> None:
        shard = self._shard()
        with self._write:
            try:
                shard.update(qe.UpdateOperation.set_payload([point_id(item_id)], dict(payload)))
            except Exception as exc:
                if "No point with id" in str(exc):
                    raise NotFound(f"no item {item_id!r}") from None
                raise

    def delete(self, item_ids: Collection[str]) -> None:
        if not item_ids or self._items is None:
            return
        with self._write:
            try:
                self._items.update(
                    qe.UpdateOperation.delete_points([point_id(i) for i in item_ids]))
            finally:
                self._revision += 1

    def retrieve(self, item_ids: Sequence[str], *, with_vectors: bool = False) -> list[Item]:
        if not item_ids or self._items is None:
            return []
        records = self._items.retrieve([point_id(i) for i in item_ids], True, with_vectors)
        return common.items_in_order(records, item_ids, with_vectors)

    def scroll(
        self, *, with_vectors: bool = False, with_payload: bool = True, batch: int = 1024
    ) -> Iterator[Item]:
        if self._items is None:
            return
        shard = self._items
        selector: Any = True if with_payload else qe.PayloadSelector.Include([ITEM_ID_KEY])
        pages = common.paged(lambda offset: shard.scroll(qe.ScrollRequest(
            offset=offset, limit=batch, with_payload=selector, with_vector=with_vectors)))
        for r in pages:
            yield common.item_of(r, with_vectors=with_vectors, with_payload=with_payload)

    # --- queries -----------------------------------------------------------------------
    @staticmethod
    def _filter(exclude: Collection[str]) -> qe.Filter | None:
        if not exclude:
            return None
        return qe.Filter(must_not=[qe.HasIdCondition({_point_uuid(x) for x in exclude})])

    def _search_params(self, ef: int | None, exact: bool) -> qe.SearchParams:
        if exact or ef is None or self._params is _EXACT_PARAMS:
            return _EXACT_PARAMS if exact else self._params
        return _beam(ef)

    def _request(
        self, query: Any, limit: int, flt: qe.Filter | None, with_payload: bool,
        with_vectors: bool, params: qe.SearchParams | None = None,
    ) -> qe.QueryRequest:
        selector: Any = True if with_payload else qe.PayloadSelector.Include([ITEM_ID_KEY])
        return qe.QueryRequest(
            limit=limit, query=query, filter=flt, with_payload=selector,
            with_vector=with_vectors, params=params or self._params,
        )

    def _query(
        self, query: Any, limit: int, exclude: Collection[str], with_payload: bool = False,
        with_vectors: bool = False, params: qe.SearchParams | None = None,
    ) -> list[Hit]:
        if self._items is None or limit <= 0:
            return []
        points = self._items.query(self._request(
            query, limit, self._filter(exclude), with_payload, with_vectors, params))
        return common.hits_of(points, with_payload, with_vectors)

    @property
    def revision(self) -> int:
        return self._revision

    def search(
        self, vector: Vector, limit: int, *, exclude: Collection[str] = (),
        with_payload: bool = False, with_vectors: bool = False, ef: int | None = None,
        exact: bool = False,
    ) -> list[Hit]:
        q = qe.Query.Nearest(_ev(common.as_vector(vector, self._spec.dim if self._spec else None)))
        return self._query(q, limit, exclude, with_payload, with_vectors,
                           self._search_params(ef, exact))

    def search_many(
        self, vectors: Sequence[Vector], limit: int, *, exclude: Collection[str] = (),
        with_vectors: bool = False, ef: Beams = None, exact: bool = False,
    ) -> list[list[Hit]]:
        if self._items is None or limit <= 0:
            return [[] for _ in vectors]
        dim = self._dim()
        flt = self._filter(exclude)  # once: converting many ids to point ids is not free
        requests = [
            self._request(qe.Query.Nearest(_ev(common.as_vector(v, dim))), limit, flt, False,
                          with_vectors, self._search_params(e, exact))
            for v, e in zip(vectors, beams(ef, len(vectors)), strict=True)
        ]
        results = self._items.query_batch(qe.QueryBatchRequest(requests))
        return [common.hits_of(r, False, with_vectors) for r in results]

    def search_mmr(
        self, vector: Vector, limit: int, *, diversity: float = 0.5, candidates: int = 100,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        v = common.as_vector(vector, self._spec.dim if self._spec else None)
        # Edge's Mmr takes lambda, the weight of relevance: Qdrant's diversity is 1 - lambda.
        q = qe.Mmr(_ev(v), 1.0 - float(diversity), max(candidates, limit))
        hits = self._query(q, limit, exclude, with_vectors=True)
        return common.rescore_by_similarity(hits, v, keep_vectors=False)

    def recommend(
        self, positive: Sequence[Vector], negative: Sequence[Vector], limit: int, *,
        strategy: RecommendStrategy = RecommendStrategy.AVERAGE_VECTOR,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        dim = self._spec.dim if self._spec else None
        pos = [common.as_vector(v, dim) for v in positive]
        neg = [common.as_vector(v, dim) for v in negative]
        strategy = RecommendStrategy(strategy)
        if strategy is RecommendStrategy.AVERAGE_VECTOR:
            # Edge exposes the scoring strategies only; average_vector is, in Qdrant too,
            # a nearest query on 2·mean(pos) − mean(neg).
            avg = _ev(common.average_vector(pos, neg))
            return self._query(qe.Query.Nearest(avg), limit, exclude)
        rq = qe.RecommendQuery([_ev(v) for v in pos], [_ev(v) for v in neg])
        if strategy is RecommendStrategy.BEST_SCORE:
            return self._query(qe.Query.RecommendBestScore(rq), limit, exclude)
        return self._query(qe.Query.RecommendSumScores(rq), limit, exclude)

    def relevance_feedback(
        self, target: Vector, pairs: Sequence[FeedbackPair], limit: int, *,
        params: FeedbackParams = DEFAULT_FEEDBACK_PARAMS, exclude: Collection[str] = (),
    ) -> list[Hit]:
        dim = self._spec.dim if self._spec else None
        t = common.as_vector(target, dim)
        feedback: list[qe.FeedbackItem] = []
        direction = common.feedback_direction(pairs, params)
        if direction is not None:
            u, score, params = direction
            feedback = [qe.FeedbackItem(_ev(u), score), qe.FeedbackItem(_ev(-u), 0.0)]
        strategy = qe.NaiveFeedbackStrategy(params.a, params.b, params.c)
        q = qe.FeedbackNaiveQuery(_ev(t), feedback, strategy)
        return self._query(qe.Query.FeedbackNaive(q), limit, exclude)

    def sample(
        self, limit: int, *, exclude: Collection[str] = (), seed: int | None = None
    ) -> list[Hit]:
        if seed is None:
            return self._query(qe.Sample.Random, limit, exclude)
        if self._items is None or limit <= 0:
            return []
        shard, flt = self._items, self._filter(exclude)
        selector = qe.PayloadSelector.Include([ITEM_ID_KEY])

        def scroll_from(offset: str | None, n: int) -> list[Any]:
            records, _ = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=n, filter=flt, with_payload=selector))
            return list(records)

        return common.seeded_sample(scroll_from, limit, seed)

    # --- documents ---------------------------------------------------------------------
    def _doc_shard(self) -> qe.EdgeShard:
        if self._docs is None:
            raise StoreUnavailable(f"the store at {self.root} is closed")
        return self._docs

    def _doc_payload(self, pid: str) -> dict[str, Any] | None:
        records = self._doc_shard().retrieve([pid], True, False)
        return dict(records[0].payload or {}) if records else None

    def _doc_version(self, pid: str) -> int | None:
        """The stored version (None: no such document), reading nothing else."""
        records = self._doc_shard().retrieve([pid], _DOC_VERSION_ONLY, False)
        if not records:
            return None
        return int((records[0].payload or {})[common.DOC_VERSION])

    def get_document(self, namespace: str, key: str) -> Document | None:
        payload = self._doc_payload(common.document_point_id(namespace, key))
        return common.document_from_payload(payload) if payload else None

    def put_document(
        self, namespace: str, key: str, body: Mapping[str, Any], *, expected_version: int
    ) -> Document:
        body = common.json_safe(body)
        size = common.body_bytes(body)  # outside the lock: it may serialise the body
        pid = common.document_point_id(namespace, key)
        shard = self._doc_shard()
        with self._write:
            # The folder lock makes this process the only writer, and ``self._write`` makes
            # this block the only writer in the process: the version read here cannot change
            # before the write below, so the check is an exact compare-and-set. Hence no
            # conditional upsert, no write history (``writes``) and no read-back, which the
            # server backend needs: each would cost more than the write itself.
            stored = self._versions.get(pid)
            if stored is None:
                stored = self._doc_version(pid) or 0
            if stored != expected_version:
                raise ConflictError(
                    f"document {namespace}/{key} is at version {stored}, "
                    f"not {expected_version}; re-read it and retry"
                )
            version = expected_version + 1
            payload = common.plain_document_payload(namespace, key, body, version)
            try:
                shard.update(qe.UpdateOperation.upsert_points([qe.Point(pid, {}, payload)]))
            except BaseException:
                self._versions.pop(pid, None)  # whether it landed is unknown: read it next time
                raise
            if len(self._versions) >= KNOWN_VERSIONS:
                self._versions.clear()
            self._versions[pid] = version
            self._unflushed += size
            if self._unflushed >= FLUSH_BYTES:
                # Here, not in a background thread: a thread waiting for ``self._write``
                # can starve behind busy writers, and the space is what must stay bounded.
                self._flush_documents()
            return Document(key, version, body)

    def delete_document(self, namespace: str, key: str) -> bool:
        pid = common.document_point_id(namespace, key)
        with self._write:
            self._versions.pop(pid, None)
            if self._doc_version(pid) is None:
                return False
            self._doc_shard().update(qe.UpdateOperation.delete_points([pid]))
            return True

    def scroll_documents(self, namespace: str, *, batch: int = 512) -> Iterator[Document]:
        shard = self._doc_shard()
        flt = qe.Filter(must=[
            qe.FieldCondition(common.DOC_NAMESPACE, match=qe.MatchValue(namespace))
        ])
        pages = common.paged(lambda offset: shard.scroll(
            qe.ScrollRequest(offset=offset, limit=batch, filter=flt, with_payload=True)))
        for r in pages:
            yield common.document_from_payload(r.payload or {})

"""Pieces both backends share: spec files, document payloads, query-vector helpers.

Keeping them here is what makes the two backends congruent: the same document payload
layout, the same pairing of relevance-feedback examples, the same meaning of an MMR score.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from indexer.errors import CollectionMismatch
from indexer.store.base import (
    ITEM_ID_KEY,
    CollectionSpec,
    Document,
    FeedbackPair,
    FeedbackParams,
    Hit,
    Item,
    Vector,
    point_id,
)

# The items' index, on both backends. An int8 copy of every vector (scalar quantization):
# the HNSW walk compares one byte per dimension, and the best OVERSAMPLING x limit it finds
# are scored again with the full vectors. The graph is built with a beam of
# HNSW_EF_CONSTRUCT, which the copy makes cheap enough to widen: queries far from every
# item (sumo's blends of region centres) find their true neighbours far more often in a
# graph built wider (research/bench_quantization.py, research/bench_query_recall.py).
QUANTILE = 0.99  # the int8 scale spans this share of the coordinates; outliers clip
OVERSAMPLING = 2.0
HNSW_EF_CONSTRUCT = 128

# Document payload keys.
DOC_NAMESPACE = "ns"
DOC_KEY = "key"
DOC_VERSION = "version"
DOC_BODY = "body"
DOC_WRITES = "writes"
# How many (version, nonce) pairs a document remembers: a compare-and-set writer reads the
# document back after its conditional write and finds its own nonce here even if a few
# other writers have already built on top of it, so it never reports a false conflict.
DOC_WRITES_KEPT = 8

SPEC_MODEL_KEY = "sumo_model"
SPEC_DIM_KEY = "sumo_dim"


# --- collection spec -----------------------------------------------------------------------
def spec_to_dict(spec: CollectionSpec) -> dict[str, Any]:
    return {SPEC_MODEL_KEY: spec.model, SPEC_DIM_KEY: spec.dim}


def spec_from_dict(d: Mapping[str, Any] | None) -> CollectionSpec | None:
    if not d or SPEC_MODEL_KEY not in d or SPEC_DIM_KEY not in d:
        return None
    return CollectionSpec(dim=int(d[SPEC_DIM_KEY]), model=str(d[SPEC_MODEL_KEY]))


def check_spec(stored: CollectionSpec, wanted: CollectionSpec, where: str) -> CollectionSpec:
    """Refuse a different model or dimension, naming both, so spaces never mix."""
    if stored.model != wanted.model or stored.dim != wanted.dim:
        raise CollectionMismatch(
            f"collection {where} holds {stored.dim}-d vectors made by {stored.model!r}, "
            f"but {wanted.dim}-d vectors made by {wanted.model!r} were offered; use the "
            f"same model, or another --collection / --data for the other model"
        )
    return stored


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write-then-rename with fsync: a crash leaves either the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- vectors -----------------------------------------------------------------------------
def as_vector(v: Any, dim: int | None = None) -> Vector:
    """A float32 1-d array of the collection's dimension."""
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    if dim is not None and a.shape[0] != dim:
        raise CollectionMismatch(f"vector has {a.shape[0]} dimensions, the collection {dim}")
    if not np.all(np.isfinite(a)):
        raise ValueError("vector contains NaN or infinite values")
    return a


def unit(v: Vector) -> Vector:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def average_vector(positive: Sequence[Vector], negative: Sequence[Vector]) -> Vector:
    """Qdrant's ``average_vector`` recommend strategy: 2·mean(pos) − mean(neg), then nearest."""
    if not positive:
        raise ValueError("the average_vector strategy needs at least one positive example")
    pos = np.mean(np.stack([np.asarray(p, dtype=np.float32) for p in positive]), axis=0)
    if not negative:
        return pos.astype(np.float32)
    neg = np.mean(np.stack([np.asarray(n, dtype=np.float32) for n in negative]), axis=0)
    return (pos + pos - neg).astype(np.float32)


def feedback_direction(
    pairs: Sequence[FeedbackPair], params: FeedbackParams
) -> tuple[Vector, float, FeedbackParams] | None:
    """Our explicit pairs as one (u, −u) feedback pair that every Qdrant version scores alike.

    Qdrant's naive strategy takes scored examples and forms the pairs itself, and its
    versions differ in how (qdrant-client local mode and Edge 0.9 use every ordered pair
    with a positive score gap; a Qdrant 1.17 server pairs best with worst, at most three).
    With two examples all of them form the same single pair. For cosine similarity,
    Σ c·conf_i^b·(sim(p_i, x) − sim(n_i, x)) = c·D·x̂ with D = Σ conf_i^b·(p̂_i − n̂_i),
    which is exactly what the pair (u = D/|D| scored s, −u scored 0) adds under the
    parameters (a, b=1, c=1) when s = c·|D|/2, since sim(u, x) − sim(−u, x) = 2·u·x̂.
    Qdrant still scores the whole index; returned scores equal the documented formula.
    Returns (u, s, params to send), or None when the pairs cancel out.
    """
    if not pairs:
        return None
    d = np.zeros_like(unit(np.asarray(pairs[0].positive, dtype=np.float32)), dtype=np.float64)
    for p in pairs:
        weight = float(p.confidence) ** params.b
        d += weight * (unit(np.asarray(p.positive, np.float64))
                       - unit(np.asarray(p.negative, np.float64)))
    norm = float(np.linalg.norm(d))
    if norm == 0.0 or params.c == 0.0:
        return None
    return (d / norm).astype(np.float32), params.c * norm / 2, FeedbackParams(params.a, 1.0, 1.0)


def rescore_by_similarity(hits: list[Hit], query: Vector, keep_vectors: bool) -> list[Hit]:
    """Give MMR hits one meaning on every backend: cosine similarity to the query.

    (Edge reports an internal MMR value, the server the similarity.) The hits must carry
    their vectors; ``keep_vectors`` says whether the caller asked for them.
    """
    q = unit(np.asarray(query, dtype=np.float32))
    out = []
    for h in hits:
        assert h.vector is not None
        score = float(np.dot(unit(h.vector), q))
        out.append(Hit(h.id, score, h.payload, h.vector if keep_vectors else None))
    return out


def item_id_of(payload: Mapping[str, Any] | None, fallback: object) -> str:
    if payload and ITEM_ID_KEY in payload:
        return str(payload[ITEM_ID_KEY])
    return str(fallback)


# --- records, as both clients return them --------------------------------------------------
class Record(Protocol):
    """A stored point as Edge and qdrant-client both return it."""

    @property
    def id(self) -> Any: ...
    @property
    def payload(self) -> Mapping[str, Any] | None: ...
    @property
    def vector(self) -> Any: ...


class ScoredRecord(Record, Protocol):
    @property
    def score(self) -> float: ...


def vector_of(v: Any) -> Vector | None:
    """A record's vector as float32; ours is the default (unnamed) one among named vectors."""
    if isinstance(v, dict):
        v = v.get("")
    return None if v is None else np.asarray(v, dtype=np.float32)


def item_of(r: Record, *, with_vectors: bool, with_payload: bool = True) -> Item:
    payload = dict(r.payload or {})
    return Item(item_id_of(payload, r.id), vector_of(r.vector) if with_vectors else None,
                payload if with_payload else {})


def items_in_order(records: Sequence[Record], item_ids: Sequence[str],
                   with_vectors: bool) -> list[Item]:
    """``retrieve``'s answer: items in the order asked for, missing ids left out."""
    found = {it.id: it for it in (item_of(r, with_vectors=with_vectors) for r in records)}
    return [found[i] for i in item_ids if i in found]


def hits_of(points: Sequence[ScoredRecord], with_payload: bool, with_vectors: bool) -> list[Hit]:
    return [
        Hit(
            item_id_of(p.payload, p.id), float(p.score),
            dict(p.payload or {}) if with_payload else None,
            vector_of(p.vector) if with_vectors else None,
        )
        for p in points
    ]


def paged(fetch: Callable[[Any], tuple[Sequence[Any], Any]]) -> Iterator[Any]:
    """Every record of a scroll: ``fetch(offset)`` gives one page and the next offset
    (``None`` after the last page); the first call gets ``None``."""
    offset: Any = None
    while True:
        records, offset = fetch(offset)
        yield from records
        if offset is None:
            return


def seeded_sample(
    scroll_from: Callable[[str | None, int], Sequence[Record]], limit: int, seed: int
) -> list[Hit]:
    """Reproducible sample: a block of points after a seeded random point id.

    Qdrant's random sample takes no seed. Point ids are UUIDv5 hashes, so id order is
    unrelated to content; choosing ``limit`` of the next ``4·limit`` ids (wrapping around)
    from a seeded start gives every item nearly the same chance. ``scroll_from(offset, n)``
    returns up to ``n`` points (excluded ones filtered out) from ``offset`` (``None``: the
    first id) in id order, with the item id in the payload.
    """
    rng = random.Random(seed)
    start = str(uuid.UUID(int=rng.getrandbits(128)))
    block = max(4 * limit, 64)
    got: list[Record] = []
    for offset in (start, None):
        seen = {str(r.id) for r in got}
        got += [r for r in scroll_from(offset, block - len(got)) if str(r.id) not in seen]
        if len(got) >= block:
            break
    picked = rng.sample(got, min(limit, len(got)))
    return [Hit(item_id_of(r.payload, r.id), 1.0) for r in picked]


def excluded_point_ids(exclude: Collection[str]) -> list[str]:
    return [point_id(x) for x in exclude]


# --- documents ---------------------------------------------------------------------------
def document_point_id(namespace: str, key: str) -> str:
    # The unit separator cannot appear in a sane namespace, so (ns, key) pairs never collide.
    return point_id(f"doc\x1f{namespace}\x1f{key}")


def document_payload(
    namespace: str, key: str, body: Mapping[str, Any], version: int, nonce: str,
    previous: Mapping[str, Any] | None,
) -> dict[str, Any]:
    writes = list(previous.get(DOC_WRITES, [])) if previous else []
    writes = ([[version, nonce]] + writes)[:DOC_WRITES_KEPT]
    payload = plain_document_payload(namespace, key, body, version)
    payload[DOC_WRITES] = writes
    return payload


def plain_document_payload(
    namespace: str, key: str, body: Mapping[str, Any], version: int
) -> dict[str, Any]:
    """A document payload without the write history (``writes``), for a backend whose
    compare-and-set is exact without reading its write back (Edge: one writer)."""
    return {DOC_NAMESPACE: namespace, DOC_KEY: key, DOC_VERSION: version, DOC_BODY: dict(body)}


def document_from_payload(payload: Mapping[str, Any]) -> Document:
    return Document(
        key=str(payload[DOC_KEY]), version=int(payload[DOC_VERSION]),
        body=dict(payload.get(DOC_BODY) or {}),
    )


def wrote(payload: Mapping[str, Any] | None, version: int, nonce: str) -> bool:
    """Whether the stored document shows our write of ``version`` (possibly built upon)."""
    if not payload:
        return False
    return [version, nonce] in [list(w) for w in payload.get(DOC_WRITES, [])]


# Values that a JSON round trip returns unchanged (exact types: subclasses such as enums
# or numpy scalars take the round trip).
_JSON_IDENTICAL = frozenset({str, int, float, bool, type(None)})


def body_bytes(body: Mapping[str, Any]) -> int:
    """About how many bytes ``body`` takes as JSON (exact enough to meter writes)."""
    if all(type(v) is str for v in body.values()):
        return sum(len(k) + len(v) + 6 for k, v in body.items())
    return len(json.dumps(dict(body), separators=(",", ":")))


def json_safe(body: Mapping[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so both backends store (and return) exactly the same body.

    A flat body of plain strings and numbers (the users' one-string records) comes back
    unchanged from the round trip, so it is only copied, not serialised and parsed back."""
    if all(type(k) is str and type(v) in _JSON_IDENTICAL for k, v in body.items()):
        return dict(body)
    out: dict[str, Any] = json.loads(json.dumps(dict(body)))
    return out

"""Excluding everything a user has seen from store queries, fingerprints included.

A store query excludes ids with an id filter, which needs the ids themselves; a user's
older seen items are only fingerprints (``recommender.seen``). So a query excludes the
exact part in the store and the wrapper here drops candidates that hit the fingerprints,
asking for more (``OVERFETCH`` extra first, then as many as the share of survivors says
are needed) until enough are left or the store has no more. Vectors, when asked for, are
fetched for the survivors only (a round of thousands of candidates would otherwise carry
thousands of vectors). Users with no folded ids (fewer than ``RECENT + FOLD`` seen) pay
nothing: their queries go to the store unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from indexer.store.base import (
    DEFAULT_FEEDBACK_PARAMS,
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
)
from recommender.seen import SeenSet

OVERFETCH = 16  # extra candidates asked for when some may be filtered out afterwards
MAX_FETCH = 4096  # beyond this, give up: the engine fills up with a random sample


class Exclusion(Collection[str]):
    """Seen items plus ids taken earlier in the same request.

    Iterating gives the exact ids only (what a store's id filter can exclude); ``in`` also
    answers for the fingerprinted older items."""

    def __init__(self, seen: SeenSet, extra: Iterable[str] = ()) -> None:
        self.seen = seen
        self.exact = seen.exact | frozenset(extra)

    @property
    def fuzzy(self) -> bool:
        """Whether some excluded items are known only by fingerprint (post-filter needed)."""
        return self.seen.old_count > 0

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.exact or item_id in self.seen

    def __iter__(self) -> Iterator[str]:
        return iter(self.exact)

    def __len__(self) -> int:
        return len(self.exact)

    def __or__(self, other: Iterable[str]) -> Exclusion:  # type: ignore[override]
        return Exclusion(self.seen, self.exact | frozenset(other))


def excluding(exclude: Collection[str], more: Iterable[str]) -> Collection[str]:
    """``exclude`` plus ``more``, keeping the fingerprints of an ``Exclusion``."""
    if isinstance(exclude, Exclusion):
        return exclude | more
    return set(exclude) | set(more)


def _split(exclude: Collection[str]) -> tuple[Collection[str], Exclusion | None]:
    if isinstance(exclude, Exclusion):
        return exclude.exact, (exclude if exclude.fuzzy else None)
    return exclude, None


def _post_filtered(run: Callable[[int], list[Hit]], limit: int, check: Exclusion | None,
                   *, fetch: int | None = None) -> list[Hit]:
    """``run(n)`` asks the store for ``n`` hits; keep those not in ``check``. ``fetch``:
    the first round's size (default ``limit + OVERFETCH``)."""
    if check is None or limit <= 0:
        return run(limit)
    fetch = fetch or limit + OVERFETCH
    while True:
        hits = run(fetch)
        kept = [h for h in hits if h.id not in check]
        if len(kept) >= limit or len(hits) < fetch or fetch >= MAX_FETCH:
            return kept[:limit]
        fetch = _next_fetch(fetch, len(kept), limit)


def _next_fetch(fetch: int, kept: int, limit: int) -> int:
    """Enough candidates for ``limit`` survivors at the share that survived ``fetch``
    (with a margin), at least twice as many as before."""
    need = int(limit * fetch / max(kept, 1) * 1.5) + OVERFETCH
    return min(max(need, 2 * fetch), MAX_FETCH)


def _with_vectors(store: Store, hits: list[Hit]) -> list[Hit]:
    """``hits`` with their vectors, fetched in one call."""
    found = {it.id: it.vector for it in store.retrieve([h.id for h in hits], with_vectors=True)}
    return [Hit(h.id, h.score, h.payload, found.get(h.id)) for h in hits]


class SeenFilteringStore(Store):
    """``store`` whose queries honour an ``Exclusion``'s fingerprints; everything else is
    passed through. Policies query through it."""

    def __init__(self, store: Store) -> None:
        self.inner = store

    # --- queries -------------------------------------------------------------------------
    @property
    def revision(self) -> int | None:
        return self.inner.revision

    def search(
        self, vector: Vector, limit: int, *, exclude: Collection[str] = (),
        with_payload: bool = False, with_vectors: bool = False, ef: int | None = None,
        exact: bool = False,
    ) -> list[Hit]:
        ids, check = _split(exclude)
        if check is None:
            return self.inner.search(vector, limit, exclude=ids, with_payload=with_payload,
                                     with_vectors=with_vectors, ef=ef, exact=exact)
        hits = _post_filtered(
            lambda n: self.inner.search(vector, n, exclude=ids, with_payload=with_payload,
                                        ef=ef, exact=exact),
            limit, check)
        return _with_vectors(self.inner, hits) if with_vectors else hits

    def search_many(
        self, vectors: Sequence[Vector], limit: int, *, exclude: Collection[str] = (),
        with_vectors: bool = False, ef: Beams = None, exact: bool = False,
    ) -> list[list[Hit]]:
        ids, check = _split(exclude)
        if check is None:
            return self.inner.search_many(vectors, limit, exclude=ids,
                                          with_vectors=with_vectors, ef=ef, exact=exact)
        # One batched round with some extra; the few queries left short go one by one.
        fetch = limit + OVERFETCH
        efs = beams(ef, len(vectors))
        out = []
        first = self.inner.search_many(vectors, fetch, exclude=ids, ef=efs, exact=exact)
        for v, e, hits in zip(vectors, efs, first, strict=True):
            kept = [h for h in hits if h.id not in check]
            if len(kept) < limit and len(hits) >= fetch:
                # Its own rounds, starting past the one just made.
                kept = _post_filtered(
                    partial(self.inner.search, v, exclude=ids, ef=e, exact=exact), limit,
                    check, fetch=_next_fetch(fetch, len(kept), limit))
            out.append(kept[:limit])
        if with_vectors:
            found = {h.id: h for h in _with_vectors(self.inner, [h for r in out for h in r])}
            out = [[found[h.id] for h in r] for r in out]
        return out

    def search_mmr(
        self, vector: Vector, limit: int, *, diversity: float = 0.5, candidates: int = 100,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        exact, check = _split(exclude)
        return _post_filtered(
            lambda n: self.inner.search_mmr(vector, n, diversity=diversity,
                                            candidates=max(candidates, n), exclude=exact),
            limit, check)

    def recommend(
        self, positive: Sequence[Vector], negative: Sequence[Vector], limit: int, *,
        strategy: RecommendStrategy = RecommendStrategy.AVERAGE_VECTOR,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        exact, check = _split(exclude)
        return _post_filtered(
            lambda n: self.inner.recommend(positive, negative, n, strategy=strategy,
                                           exclude=exact), limit, check)

    def relevance_feedback(
        self, target: Vector, pairs: Sequence[FeedbackPair], limit: int, *,
        params: FeedbackParams = DEFAULT_FEEDBACK_PARAMS, exclude: Collection[str] = (),
    ) -> list[Hit]:
        exact, check = _split(exclude)
        return _post_filtered(
            lambda n: self.inner.relevance_feedback(target, pairs, n, params=params,
                                                    exclude=exact), limit, check)

    def sample(
        self, limit: int, *, exclude: Collection[str] = (), seed: int | None = None
    ) -> list[Hit]:
        exact, check = _split(exclude)
        return _post_filtered(lambda n: self.inner.sample(n, exclude=exact, seed=seed),
                              limit, check)

    # --- everything else, passed through -------------------------------------------------
    def ensure_collection(self, spec: CollectionSpec) -> CollectionSpec:
        return self.inner.ensure_collection(spec)

    def spec(self) -> CollectionSpec | None:
        return self.inner.spec()

    def count(self) -> int:
        return self.inner.count()

    def optimize(self) -> None:
        self.inner.optimize()

    def flush(self) -> None:
        self.inner.flush()

    def warm(self) -> None:
        self.inner.warm()

    def close(self) -> None:
        self.inner.close()

    def upsert(self, items: Sequence[Item]) -> None:
        self.inner.upsert(items)

    def set_payload(self, item_id: str, payload: Mapping[str, Any]) -> None:
        self.inner.set_payload(item_id, payload)

    def delete(self, item_ids: Collection[str]) -> None:
        self.inner.delete(item_ids)

    def retrieve(self, item_ids: Sequence[str], *, with_vectors: bool = False) -> list[Item]:
        return self.inner.retrieve(item_ids, with_vectors=with_vectors)

    def scroll(
        self, *, with_vectors: bool = False, with_payload: bool = True, batch: int = 1024
    ) -> Iterator[Item]:
        return self.inner.scroll(with_vectors=with_vectors, with_payload=with_payload,
                                 batch=batch)

    def get_document(self, namespace: str, key: str) -> Document | None:
        return self.inner.get_document(namespace, key)

    def put_document(
        self, namespace: str, key: str, body: Mapping[str, Any], *, expected_version: int
    ) -> Document:
        return self.inner.put_document(namespace, key, body, expected_version=expected_version)

    def delete_document(self, namespace: str, key: str) -> bool:
        return self.inner.delete_document(namespace, key)

    def scroll_documents(self, namespace: str, *, batch: int = 512) -> Iterator[Document]:
        return self.inner.scroll_documents(namespace, batch=batch)

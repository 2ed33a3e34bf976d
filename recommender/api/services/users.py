"""The async face of the user repository for route handlers: per-user queueing, blocking
work off or on the event loop, metrics. Storage and compare-and-set live in
``recommender.users``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from indexer.errors import ConflictError
from indexer.store.base import Hit, Vector
from recommender import searches
from recommender.api.errors import InvalidRequest
from recommender.api.metrics import Metrics
from recommender.api.schemas import FeedbackEvent
from recommender.api.services.text import TextService
from recommender.errors import InvalidFeedback
from recommender.users import FeedbackOutcome, UserRepository, UserSummary

T = TypeVar("T")


class KeyedLocks:
    """One asyncio lock per key while anyone holds or waits for it.

    Requests for the same user in one process queue here instead of racing through
    compare-and-set (which stays the guard across processes); waiting costs no thread.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class UserService:
    """The async face of the repository used by route handlers: per-user queueing, blocking
    work off or on the event loop, metrics.

    ``inline``: run the repository's store work on the event loop instead of the thread
    pool. Right for an embedded store (Qdrant Edge), whose calls are short CPU work in this
    process: a worker thread buys no parallelism there (the Python around each call needs
    the GIL), and every Edge call releases the GIL, so under load the worker thread waits
    for the busy event-loop thread to hand it back, up to the interpreter's 5 ms switch
    interval each time, several times per request. Over the network (a Qdrant server)
    the calls wait on I/O and belong in the thread pool, as everything does by default.
    Inline updates make one compare-and-set attempt; a lost race (another replica wrote)
    is retried, with back-off, in the thread pool.
    """

    def __init__(
        self, repo: UserRepository, metrics: Metrics, *, max_limit: int, max_events: int,
        inline: bool = False,
    ) -> None:
        self.repo = repo
        self.metrics = metrics
        self.max_limit = max_limit
        self.max_events = max_events
        self.inline = inline
        self._locks = KeyedLocks()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """A plain repository call: inline or in the thread pool."""
        if self.inline:
            return fn(*args)
        return await run_in_threadpool(fn, *args)

    async def _update(self, fn: Callable[..., T], *args: Any) -> T:
        """A compare-and-set update (``fn`` takes ``attempts=``)."""
        if self.inline:
            try:
                return fn(*args, attempts=1)
            except ConflictError:
                pass  # another replica wrote in between: retry off the loop, with back-off
        return await run_in_threadpool(fn, *args)

    async def recommend(
        self, user_id: str, limit: int, policy: str | None
    ) -> tuple[list[Hit], str]:
        if limit > self.max_limit:
            raise InvalidRequest(f"limit {limit} is over the maximum of {self.max_limit}")
        start = time.perf_counter()
        async with self._locks.hold(user_id):
            hits, used = await self._update(self.repo.recommend, user_id, limit, policy)
        self.metrics.child(self.metrics.recommendation_seconds, used).observe(
            time.perf_counter() - start
        )
        return hits, used

    async def feedback(self, user_id: str, events: Sequence[FeedbackEvent]) -> FeedbackOutcome:
        if len(events) > self.max_events:
            raise InvalidRequest(
                f"{len(events)} events in one request; the maximum is {self.max_events}"
            )
        try:
            async with self._locks.hold(user_id):
                outcome = await self._update(self.repo.feedback, user_id, events)
        except InvalidFeedback as exc:
            self.metrics.child(self.metrics.feedback_events, "rejected").inc(len(exc.problems))
            raise
        self.metrics.child(self.metrics.feedback_events, "applied").inc(outcome.applied)
        self.metrics.child(self.metrics.feedback_events, "duplicate").inc(outcome.duplicates)
        return outcome

    async def seed(self, user_id: str, vectors: Sequence[Vector]) -> UserSummary:
        async with self._locks.hold(user_id):
            return await self._update(self.repo.seed, user_id, vectors)

    async def seed_from(
        self, user_id: str, text: str | None, item_ids: Sequence[str] | None, encoder: TextService
    ) -> UserSummary:
        """Warm start from a description (CLIP text encoder) and/or liked items (at least
        one: ``SeedRequest`` refuses neither)."""
        vectors: list[Vector] = []
        if item_ids:
            found = await self.item_vectors(item_ids)
            unknown = [
                {"index": i, "item_id": item_id, "error": "unknown item"}
                for i, (item_id, v) in enumerate(zip(item_ids, found, strict=True)) if v is None
            ]
            if unknown:
                raise InvalidRequest(f"{len(unknown)} unknown item(s) in the seed", unknown)
            vectors += [np.asarray(v, np.float32) for v in found if v is not None]
        if text:
            v = await encoder.encode(text)
            vectors.append(v)
            # "Show me more of ...": what the user asked for is demand the gap report reads.
            await self._call(searches.record, self.repo.store, text, v, user_id)
        return await self.seed(user_id, vectors)

    async def summary(self, user_id: str) -> UserSummary:
        return await self._call(self.repo.summary, user_id)

    async def delete(self, user_id: str) -> bool:
        async with self._locks.hold(user_id):
            return await self._call(self.repo.delete, user_id)

    async def item_vectors(self, item_ids: Sequence[str]) -> list[Vector | None]:
        return await self._call(self.repo.item_vectors, item_ids)

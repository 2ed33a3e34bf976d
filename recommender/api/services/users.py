"""The user repository: ``UserState`` kept as documents in the store's ``users`` namespace.

Every change is a read-modify-write guarded by compare-and-set on the document version:
API replicas are stateless and may serve the same user at once, and a lost race re-reads
the fresh state and re-applies the change, so no update is ever lost. A request is only
acknowledged after its write succeeded, so a crash after the reply loses nothing.

Feedback is idempotent per ``event_id``: the document keeps digests of the most recent
applied event ids beside the state, and events already among them are skipped. Retries
arrive within seconds, so a bounded memory is enough; an event retried after
``EVENT_MEMORY`` newer events would be applied again.

Storage layout: ``recommender.api.services.userdoc``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from indexer.errors import ConflictError, NotFound
from indexer.store.base import Document, Hit, Store, Vector
from recommender.api.errors import InvalidRequest
from recommender.api.metrics import Metrics
from recommender.api.schemas import FeedbackEvent
from recommender.api.services import userdoc
from recommender.api.services.text import TextEncoder
from recommender.api.services.userdoc import NAMESPACE
from recommender.dwell import validate_dwell
from recommender.engine import Engine, Observation
from recommender.errors import InvalidFeedback, UnknownPolicy
from recommender.state import UserState

EVENT_MEMORY = 512  # applied event-id digests kept per user
MAX_ATTEMPTS = 64  # compare-and-set retries before giving up with 409
T = TypeVar("T")


def event_digest(event_id: str) -> str:
    """A short fixed-size stand-in for a client event id (72 bits: collisions are moot)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=9).digest()
    return base64.urlsafe_b64encode(digest).decode()


@dataclass
class UserRecord:
    """One user's state plus idempotency memory, as read at ``version`` (0: new user)."""

    state: UserState
    version: int = 0
    event_ids: deque[str] = field(default_factory=lambda: deque(maxlen=EVENT_MEMORY))

    def __post_init__(self) -> None:
        self._event_set = set(self.event_ids)

    @classmethod
    def from_document(cls, doc: Document) -> UserRecord:
        record = userdoc.unpack(doc.body)
        ids = deque(record.get("event_ids", []), maxlen=EVENT_MEMORY)
        return cls(UserState.from_dict(record["state"]), doc.version, ids)

    def body(self) -> dict[str, Any]:
        return userdoc.pack(self.state, list(self.event_ids))

    def applied(self, digest: str) -> bool:
        return digest in self._event_set

    def remember(self, digest: str) -> None:
        if len(self.event_ids) == self.event_ids.maxlen:
            self._event_set.discard(self.event_ids[0])
        self.event_ids.append(digest)
        self._event_set.add(digest)


@dataclass(frozen=True)
class UserSummary:
    user_id: str
    events: int
    last_active: datetime | None
    policy: str
    seen: int

    @classmethod
    def of(cls, state: UserState) -> UserSummary:
        last = datetime.fromtimestamp(state.last_active, UTC) if state.last_active else None
        return cls(state.user_id, state.events, last, state.policy, len(state.seen))

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id, "events": self.events, "policy": self.policy,
            "last_active": self.last_active.isoformat() if self.last_active else None,
            "seen": self.seen,
        }


@dataclass(frozen=True)
class FeedbackOutcome:
    applied: int
    duplicates: int
    events: int


class UserRepository:
    """Blocking, thread-safe: every method may run in a worker thread."""

    def __init__(self, store: Store, engine: Engine, *, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.store = store
        self.engine = engine
        self.max_attempts = max_attempts

    # --- plain reads and deletes ---------------------------------------------------------
    def load(self, user_id: str) -> UserRecord | None:
        doc = self.store.get_document(NAMESPACE, user_id)
        return None if doc is None else UserRecord.from_document(doc)

    def summary(self, user_id: str) -> UserSummary:
        record = self.load(user_id)
        if record is None:
            raise NotFound(f"no user {user_id!r}")
        return UserSummary.of(record.state)

    def delete(self, user_id: str) -> bool:
        return self.store.delete_document(NAMESPACE, user_id)

    # --- compare-and-set updates ---------------------------------------------------------
    def update(
        self, user_id: str, change: Callable[[UserRecord], tuple[T, bool]], *,
        attempts: int | None = None,
    ) -> T:
        """Apply ``change`` to the fresh record and write it back only if nobody wrote in
        between; otherwise re-read and re-apply (at most ``attempts`` times, default
        ``max_attempts``). ``change`` returns (result, dirty); a clean change (e.g. only
        duplicate events) writes nothing."""
        attempts = self.max_attempts if attempts is None else attempts
        for attempt in range(attempts):
            record = self.load(user_id) or UserRecord(self.engine.new_state(user_id))
            result, dirty = change(record)
            if not dirty:
                return result
            try:
                self.store.put_document(
                    NAMESPACE, user_id, record.body(), expected_version=record.version
                )
                return result
            except ConflictError:
                if attempt + 1 < attempts:
                    # Back off a little, randomly, so racing writers stop colliding in
                    # lockstep.
                    time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
        raise ConflictError(
            f"user {user_id!r}: lost {attempts} concurrent updates in a row; retry"
        )

    def recommend(
        self, user_id: str, limit: int, policy: str | None, *, attempts: int | None = None
    ) -> tuple[list[Hit], str]:
        if policy is not None and policy not in self.engine.policy_names:
            raise UnknownPolicy(policy, list(self.engine.policy_names))
        if self.store.spec() is None:
            # Nothing indexed yet: nothing to show, and no user document to create.
            return [], policy or self.engine.default_policy

        def change(record: UserRecord) -> tuple[tuple[list[Hit], str], bool]:
            hits = self.engine.recommend(record.state, limit, policy)
            return (hits, policy or record.state.policy), True

        return self.update(user_id, change, attempts=attempts)

    def feedback(
        self, user_id: str, events: Sequence[FeedbackEvent], *, attempts: int | None = None
    ) -> FeedbackOutcome:
        observations = self._observations(events)
        digests = [None if e.event_id is None else event_digest(e.event_id) for e in events]

        def change(record: UserRecord) -> tuple[FeedbackOutcome, bool]:
            fresh: list[Observation] = []
            for obs, digest in zip(observations, digests, strict=True):
                if digest is not None:
                    if record.applied(digest):
                        continue  # applied before (or earlier in this batch)
                    record.remember(digest)
                fresh.append(obs)
            if fresh:
                self.engine.observe(record.state, fresh)
            outcome = FeedbackOutcome(len(fresh), len(events) - len(fresh), record.state.events)
            return outcome, bool(fresh)

        return self.update(user_id, change, attempts=attempts)

    def seed(
        self, user_id: str, vectors: Sequence[Vector], *, attempts: int | None = None
    ) -> UserSummary:
        def change(record: UserRecord) -> tuple[UserSummary, bool]:
            self.engine.seed(record.state, vectors)
            return UserSummary.of(record.state), True

        return self.update(user_id, change, attempts=attempts)

    def item_vectors(self, item_ids: Sequence[str]) -> list[Vector | None]:
        """Vectors of ``item_ids`` in order; ``None`` for unknown items."""
        found = {it.id: it.vector for it in self.store.retrieve(list(item_ids), with_vectors=True)}
        return [found.get(i) for i in item_ids]

    def _observations(self, events: Sequence[FeedbackEvent]) -> list[Observation]:
        """Check every event before anything is applied; all problems are reported at once."""
        vectors = self.item_vectors(list(dict.fromkeys(e.item_id for e in events)))
        by_id = dict(zip(dict.fromkeys(e.item_id for e in events), vectors, strict=True))
        problems: list[dict[str, Any]] = []
        observations: list[Observation] = []
        for i, e in enumerate(events):
            vector = by_id[e.item_id]
            ts = e.ts.timestamp() if isinstance(e.ts, datetime) else e.ts
            reasons = [
                "unknown item" if vector is None else None,
                validate_dwell(e.dwell_ms),
                "ts must be a finite unix time" if ts is not None and not math.isfinite(ts)
                else None,
            ]
            problems += [{"index": i, "item_id": e.item_id, "error": r} for r in reasons if r]
            if vector is not None and not any(reasons):
                observations.append(
                    Observation(e.item_id, np.asarray(vector, np.float32), e.dwell_ms, ts)
                )
        if problems:
            raise InvalidFeedback(problems)
        return observations


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
        self, user_id: str, text: str | None, item_ids: Sequence[str] | None, encoder: TextEncoder
    ) -> UserSummary:
        """Warm start from a description (CLIP text encoder) and/or liked items."""
        if not text and not item_ids:
            raise InvalidRequest("a seed needs text, item_ids, or both")
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
            vectors.append(await encoder.encode(text))
        return await self.seed(user_id, vectors)

    async def summary(self, user_id: str) -> UserSummary:
        return await self._call(self.repo.summary, user_id)

    async def delete(self, user_id: str) -> bool:
        async with self._locks.hold(user_id):
            return await self._call(self.repo.delete, user_id)

    async def item_vectors(self, item_ids: Sequence[str]) -> list[Vector | None]:
        return await self._call(self.repo.item_vectors, item_ids)

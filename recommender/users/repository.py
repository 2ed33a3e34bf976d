"""The user repository: ``UserState`` kept as documents in the store's ``users`` namespace.

Every change is a read-modify-write guarded by compare-and-set on the document version:
API replicas are stateless and may serve the same user at once, and a lost race re-reads
the fresh state and re-applies the change, so no update is ever lost. A request is only
acknowledged after its write succeeded, so a crash after the reply loses nothing.

Feedback is idempotent per ``event_id``: the document keeps digests of the most recent
applied event ids beside the state, and events already among them are skipped. Retries
arrive within seconds, so a bounded memory is enough; an event retried after
``EVENT_MEMORY`` newer events would be applied again.

Storage layout: ``recommender.users.document``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import numpy as np

from indexer.errors import NotFound
from indexer.store.base import CAS_ATTEMPTS, Document, Hit, Store, Vector
from recommender.dwell import validate_dwell, validate_ts
from recommender.engine import Engine, Observation
from recommender.errors import BadState, InvalidFeedback, UnknownPolicy
from recommender.state import UserState
from recommender.timing import span
from recommender.users import document
from recommender.users.document import NAMESPACE

log = logging.getLogger("sumo.users")

EVENT_MEMORY = 512  # applied event-id digests kept per user
DIGEST_CHARS = 12  # base64 of a 9-byte digest
T = TypeVar("T")


class FeedbackInput(Protocol):
    """One feedback event as a client sent it (the API's ``FeedbackEvent`` is one)."""

    item_id: str
    dwell_ms: float
    event_id: str | None
    ts: float | datetime | None


def event_digest(event_id: str) -> str:
    """A short fixed-size stand-in for a client event id (72 bits: collisions are moot),
    ``DIGEST_CHARS`` characters long."""
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
        record = document.unpack(doc.body)
        try:
            raw = document.unpack_event_ids(record.get("event_ids", ""), DIGEST_CHARS)
        except BadState as exc:
            log.warning("user document %r: %s; forgotten", doc.key, exc)
            raw = []
        ids = deque(raw, maxlen=EVENT_MEMORY)
        state = record.get("state")
        if not isinstance(state, dict):
            raise BadState(f"user document {doc.key!r} holds no state")
        return cls(UserState.from_dict(state), doc.version, ids)

    def body(self) -> dict[str, Any]:
        return document.pack(self.state, list(self.event_ids))

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
        last = None
        if state.last_active:
            try:
                last = datetime.fromtimestamp(state.last_active, UTC)
            except (OverflowError, OSError, ValueError):  # read-time repair should prevent it
                log.warning("user %r: last_active %r is not a date", state.user_id,
                            state.last_active)
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

    def __init__(self, store: Store, engine: Engine) -> None:
        self.store = store
        self.engine = engine

    # --- plain reads and deletes ---------------------------------------------------------
    def load(self, user_id: str) -> UserRecord | None:
        doc = self.store.get_document(NAMESPACE, user_id)
        return None if doc is None else self._record(user_id, doc)

    def _record(self, user_id: str, doc: Document) -> UserRecord:
        record = UserRecord.from_document(doc)
        state = record.state
        if state.policy not in self.engine.policy_names:
            # A policy this deployment no longer has: the user continues on the default
            # one, as a request naming another policy would move them.
            log.warning("user %r: stored policy %r is unknown here; moved to %r",
                        user_id, state.policy, self.engine.default_policy)
            state.policy, state.data = self.engine.default_policy, {}
        return record

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
        ``CAS_ATTEMPTS``, then 409). ``change`` returns (result, dirty); a clean change (e.g.
        only duplicate events) writes nothing."""
        attempts = CAS_ATTEMPTS if attempts is None else attempts

        def step(doc: Document | None) -> tuple[T, dict[str, Any] | None]:
            record = (self._record(user_id, doc) if doc is not None
                      else UserRecord(self.engine.new_state(user_id)))
            result, dirty = change(record)
            return result, (record.body() if dirty else None)

        return self.store.update_document(NAMESPACE, user_id, step, attempts=attempts)

    def recommend(
        self, user_id: str, limit: int, policy: str | None, *, attempts: int | None = None
    ) -> tuple[list[Hit], str]:
        if policy is not None and policy not in self.engine.policy_names:
            raise UnknownPolicy(policy, list(self.engine.policy_names))
        if self.store.spec() is None:
            # Nothing indexed yet: nothing to show, and no user document to create.
            return [], policy or self.engine.default_policy

        def change(record: UserRecord) -> tuple[tuple[list[Hit], str], bool]:
            with span("engine"):
                hits = self.engine.recommend(record.state, limit, policy)
            return (hits, policy or record.state.policy), True

        return self.update(user_id, change, attempts=attempts)

    def feedback(
        self, user_id: str, events: Sequence[FeedbackInput], *, attempts: int | None = None
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
                with span("engine"):
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

    def _observations(self, events: Sequence[FeedbackInput]) -> list[Observation]:
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
                validate_ts(ts),
            ]
            problems += [{"index": i, "item_id": e.item_id, "error": r} for r in reasons if r]
            if vector is not None and not any(reasons):
                observations.append(
                    Observation(e.item_id, np.asarray(vector, np.float32), e.dwell_ms, ts)
                )
        if problems:
            raise InvalidFeedback(problems)
        return observations

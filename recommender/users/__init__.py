"""Users: their state as stored documents, read and changed under compare-and-set.

Below both the HTTP API and the gap report; knows nothing of either.
"""

from recommender.users.document import NAMESPACE, iter_states, state_body, state_from_document
from recommender.users.repository import (
    EVENT_MEMORY,
    FeedbackInput,
    FeedbackOutcome,
    UserRecord,
    UserRepository,
    UserSummary,
    event_digest,
)

__all__ = [
    "EVENT_MEMORY",
    "NAMESPACE",
    "FeedbackInput",
    "FeedbackOutcome",
    "UserRecord",
    "UserRepository",
    "UserSummary",
    "event_digest",
    "iter_states",
    "state_body",
    "state_from_document",
]

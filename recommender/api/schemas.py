"""Every request and response body of the HTTP API, in one place.

These shapes are a contract other tools rely on (the feed page, load generators, the gap
report): add fields, never rename or remove them. Hot paths build responses as plain dicts
(serialised by orjson) in exactly these shapes; the models here document them in OpenAPI
and validate what comes in.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

# User and item ids travel in URL paths: keep them to characters that need no escaping
# beyond what every HTTP client does, and short enough to index.
USER_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
UserId = Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)]
ItemId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
# Numbers in bodies are JSON numbers: ``true`` is not 1 and ``"5"`` is not 5.
Number = Annotated[float, Field(strict=True)]


class ErrorCode(StrEnum):
    """Stable machine-readable error codes (``error.code``)."""

    VALIDATION = "validation_error"
    INVALID_FEEDBACK = "invalid_feedback"
    UNKNOWN_POLICY = "unknown_policy"
    NOT_FOUND = "not_found"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    CONFLICT = "conflict"
    TEXT_ENCODER_UNAVAILABLE = "text_encoder_unavailable"
    STORE_UNAVAILABLE = "store_unavailable"
    BAD_STATE = "bad_state"
    HTTP = "http_error"
    INTERNAL = "internal_error"


class ImageFormat(StrEnum):
    JPEG = "jpeg"
    WEBP = "webp"


class Readiness(StrEnum):
    READY = "ready"
    NOT_READY = "not_ready"


class ModelStatus(StrEnum):
    LOADED = "loaded"
    NOT_NEEDED = "not_needed"  # imported vectors: no text encoder matches the collection
    UNAVAILABLE = "unavailable"  # needed but could not be loaded (weights missing...)


# --- errors -------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The one shape of every error: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorBody


# --- items --------------------------------------------------------------------------------
class ScoredItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    score: float
    image_url: str = Field(description="relative URL of the resized image (append ?size=N)")


class Recommendations(BaseModel):
    items: list[ScoredItem]
    policy: str = Field(description="the policy that produced these items")


class SearchResults(BaseModel):
    items: list[ScoredItem]
    query: str


class ItemInfo(BaseModel):
    id: str
    image_url: str
    width: int | None = None
    height: int | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="the item's payload, without file system paths"
    )


# --- users --------------------------------------------------------------------------------
class FeedbackEvent(BaseModel):
    """How long one item was looked at. ``dwell_ms`` is checked by the service (not here) so
    that every bad event of a batch is reported together, in one shape."""

    model_config = ConfigDict(extra="forbid")

    item_id: ItemId
    dwell_ms: Number
    event_id: EventId | None = Field(
        default=None, description="client-chosen id; a retried event with the same id is ignored"
    )
    ts: Number | datetime | None = Field(
        default=None, description="when the view ended: seconds since the epoch (not "
        "milliseconds) or ISO 8601, from 2000-01-01 to one day after the server's clock",
    )


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[FeedbackEvent] = Field(min_length=1)


class FeedbackResult(BaseModel):
    applied: int = Field(description="events applied by this request")
    duplicates: int = Field(description="events ignored because their event_id was applied before")
    events: int = Field(description="distinct events applied to this user so far")


class SeedRequest(BaseModel):
    """At least one of ``text`` and ``item_ids``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"anyOf": [{"required": ["text"]}, {"required": ["item_ids"]}]},
    )

    # A null is taken as absent; the document lists the fields as non-null strings.
    text: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | SkipJsonSchema[
        None
    ] = None
    item_ids: Annotated[list[ItemId], Field(min_length=1, max_length=100)] | SkipJsonSchema[
        None
    ] = None

    @model_validator(mode="after")
    def _something(self) -> SeedRequest:
        if self.text is None and self.item_ids is None:
            raise ValueError("a seed needs text, item_ids, or both")
        return self


class UserInfo(BaseModel):
    user_id: str
    events: int = Field(description="distinct feedback events applied")
    last_active: datetime | None = Field(description="time of the last feedback (UTC)")
    policy: str
    seen: int = Field(description="items shown or given feedback on (never shown again)")


class Deleted(BaseModel):
    user_id: str
    deleted: bool


# --- health -------------------------------------------------------------------------------
class Health(BaseModel):
    status: str = "ok"


class ReadyCheck(BaseModel):
    status: Readiness
    store: str
    model: ModelStatus
    items: int | None = None
    reasons: list[str] = Field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.status is Readiness.READY


# --- gap report (owned by the gaps helper; shapes from recommender.gaps.report) -----------
class GapDemand(BaseModel):
    users: float = Field(description="users whose target falls in the region (estimated total)")
    engagement: float = Field(description="their total dwell seconds")
    weight: float = Field(description="demand weighted by engagement and recency, in users")
    share: float = Field(description="share of all weighted demand")
    cohesion: float = Field(description="mean cosine of the region's demand to its centroid")
    searches: int = Field(0, description="recorded searches in the region")
    unmet_searches: int = Field(0, description="of which the best match was far (calibrated)")
    queries: list[str] = Field(default_factory=list, description="a few of those searches")
    satisfaction_z: float | None = Field(
        None, description="standard errors the users' best-view lift is below everyone's")


class GapSupply(BaseModel):
    nearest_similarity: float | None = Field(description="cosine of the nearest item")
    local_similarity: float | None = Field(description="typical item spacing around it")
    isolation: float | None = Field(description="nearest-item angle / local item spacing")
    isolation_ratio: float | None = Field(description="isolation / the corpus's own threshold")
    reach_ratio: float | None = Field(
        None, description="nearest-item angle / the angle served content's centres keep")
    concentration: float | None = Field(description="nearest-item angle / spread of demand")
    deficit: float | None = Field(description="ln(min(reach_ratio, concentration))")
    items_within_radius: int | None = Field(
        description="items near the centroid (null: not measured, a region listed late)")
    within_capped: bool


class GapLabel(BaseModel):
    text: str
    kind: str
    score: float


class GapNearItem(BaseModel):
    id: str
    score: float
    name: str | None = Field(None, description="the image's file name")
    image_url: str


class GapRegion(BaseModel):
    id: str
    gap: bool = Field(description="score above the threshold, with enough unmet demand")
    signals: list[str] = Field(
        default_factory=list,
        description="the demand behind it: targets, unmet_searches, unsatisfied")
    score: float | None
    centroid: list[float]
    demand: GapDemand
    supply: GapSupply
    labels: list[GapLabel]
    nearest_items: list[GapNearItem]
    prompt: str | None


class GapReportResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    regions: list[GapRegion] = Field(description="best first: gaps by score, then the rest")
    gaps: int
    threshold: dict[str, Any]
    sampled: dict[str, Any]
    labels_note: str | None = None

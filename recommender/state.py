"""Everything SUMO knows about one user, small and JSON-serialisable.

The service keeps this in the store's ``users`` namespace and rewrites it with
compare-and-set on every feedback batch, so it must stay small: vectors travel as base64
(float32 for the target, int8 for windowed item vectors, which are unit-norm and survive
8-bit quantisation with cosine error far below the noise in dwell), and every list is
bounded except ``seen``, which the no-repeat promise needs whole.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexer.store.base import Vector
from recommender.dwell import DwellStats
from recommender.errors import BadState

FORMAT = 1


def unit(v: Vector | np.ndarray) -> Vector:
    """``v`` scaled to unit length (float32); a zero vector stays zero."""
    a = np.asarray(v, dtype=np.float32)
    n = float(np.linalg.norm(a))
    return a / n if n > 0 else a


def encode_f32(v: Vector) -> str:
    return base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode("ascii")


def decode_f32(s: str) -> Vector:
    return np.frombuffer(base64.b64decode(s), dtype="<f4").astype(np.float32)


def encode_f16(v: Vector) -> str:
    return base64.b64encode(np.asarray(v, dtype="<f2").tobytes()).decode("ascii")


def decode_f16(s: str) -> Vector:
    return np.frombuffer(base64.b64decode(s), dtype="<f2").astype(np.float32)


def encode_unit_i8(v: Vector) -> str:
    """A unit vector in 8 bits per coordinate (scale is implied: decode renormalises)."""
    a = np.asarray(v, dtype=np.float32)
    m = float(np.max(np.abs(a))) or 1.0
    q = np.clip(np.rint(a / m * 127.0), -127, 127).astype(np.int8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def decode_unit_i8(s: str) -> Vector:
    return unit(np.frombuffer(base64.b64decode(s), dtype=np.int8).astype(np.float32))


@dataclass
class UserState:
    user_id: str
    policy: str
    target: Vector | None = None  # unit-norm learned taste (None before any signal)
    events: int = 0  # distinct feedback events applied
    engagement: float = 0.0  # total dwell seconds (capped per event)
    last_active: float = 0.0  # unix seconds of the last feedback
    seen: list[str] = field(default_factory=list)
    dwell: DwellStats = field(default_factory=DwellStats)
    # Policy-specific, JSON-safe fields owned by ``policy`` (moments, window, ...). A user
    # moved to another policy starts that policy's part afresh from the shared fields.
    data: dict[str, Any] = field(default_factory=dict)
    _seen_set: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._seen_set = set(self.seen)

    def is_seen(self, item_id: str) -> bool:
        return item_id in self._seen_set

    @property
    def seen_set(self) -> frozenset[str]:
        return frozenset(self._seen_set)

    def mark_seen(self, item_ids: list[str] | tuple[str, ...]) -> None:
        for i in item_ids:
            if i not in self._seen_set:
                self._seen_set.add(i)
                self.seen.append(i)

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self, *, with_seen: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": FORMAT,
            "user_id": self.user_id,
            "policy": self.policy,
            "target": None if self.target is None else encode_f32(self.target),
            "events": self.events,
            "engagement": round(self.engagement, 3),
            "last_active": self.last_active,
            "dwell": self.dwell.to_dict(),
            "data": self.data,
        }
        if with_seen:
            d["seen"] = list(self.seen)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserState:
        if d.get("format") != FORMAT:
            raise BadState(f"user state format {d.get('format')!r} is not {FORMAT}")
        try:
            target = None if d.get("target") is None else decode_f32(d["target"])
            return cls(
                user_id=str(d["user_id"]),
                policy=str(d["policy"]),
                target=target,
                events=int(d.get("events", 0)),
                engagement=float(d.get("engagement", 0.0)),
                last_active=float(d.get("last_active", 0.0)),
                seen=[str(s) for s in d.get("seen", [])],
                dwell=DwellStats.from_dict(d.get("dwell", {})),
                data=dict(d.get("data", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadState(f"user state could not be decoded: {exc}") from exc

    def size_bytes(self) -> int:
        """Serialised JSON size without the seen list (the bounded part of the state)."""
        return len(json.dumps(self.to_dict(with_seen=False), separators=(",", ":")))

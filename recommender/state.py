"""Everything SUMO knows about one user, small and JSON-serialisable.

The service keeps this in the store's ``users`` namespace and rewrites it with
compare-and-set on every feedback batch, so it must stay small: vectors travel as base64
(float32 for the target, int8 for windowed item vectors, which are unit-norm and survive
8-bit quantisation with cosine error far below the noise in dwell), every list is bounded,
and ``seen`` keeps recent ids exactly and older ones as fingerprints
(``recommender.seen``): ~45 KB at 20,000 seen items.

Reading is forgiving: a state written by an older version (format 1: ``seen`` as a list) is
migrated, and a field holding a value no version should have stored (a ``last_active`` in
milliseconds, a vector that does not decode) is repaired or dropped with a warning in the
log, so one bad value never makes a user unreadable.
"""

from __future__ import annotations

import binascii
import json
import logging
import math
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from indexer.store.base import Vector
from recommender.dwell import DwellStats
from recommender.errors import BadState
from recommender.seen import SeenSet

FORMAT = 2  # 2: seen as recent ids + fingerprints; 1: seen as one list of ids
LEGACY_FORMATS = (1,)
# Unix seconds a ``last_active`` may hold: up to the year 3000 (a value in milliseconds,
# ~1.7e12, is far above; datetime cannot even show the year 33658 it would mean).
MAX_UNIX_S = 32_503_680_000.0

log = logging.getLogger("sumo.state")

_F4, _F2, _I8 = np.dtype("<f4"), np.dtype("<f2"), np.dtype(np.int8)
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Memo(Generic[K, V]):
    """A small bounded memo (oldest entry out first), safe across threads.

    The service rewrites a user's state on every request, and most of it comes back
    unchanged: eleven of the twelve window vectors, the target between two feedback posts.
    Base64 and int8 conversions of 512-d vectors cost 3-15 us each (binascii decodes only
    ~270 MB/s), so the same strings were decoded and encoded again on every request."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._d: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        return self._d.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if key not in self._d and len(self._d) >= self.size:
                del self._d[next(iter(self._d))]
            self._d[key] = value


# Decoded vectors (kept read-only; callers get copies) and encoded strings. Sized for a few
# hundred active users: at most ~15 MB.
_DECODED_I8: _Memo[str, Vector] = _Memo(2048)
_ENCODED_I8: _Memo[bytes, str] = _Memo(2048)
_DECODED_F32: _Memo[str, Vector] = _Memo(512)
_DECODED_F16: _Memo[str, Vector] = _Memo(512)


def _frozen(a: Vector) -> Vector:
    a.flags.writeable = False
    return a


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _decode(memo: _Memo[str, Vector], s: str, decode: Callable[[str], Vector]) -> Vector:
    """``decode(s)`` through ``memo``; always a fresh, writable array."""
    if type(s) is not str:
        return decode(s)
    a = memo.get(s)
    if a is None:
        a = _frozen(decode(s))
        memo.put(s, a)
    return a.copy()


def unit(v: Vector | np.ndarray) -> Vector:
    """``v`` scaled to unit length (float32); a zero vector stays zero."""
    a = np.asarray(v, dtype=np.float32)
    n = float(np.linalg.norm(a))
    return a / n if n > 0 else a


def _encode_floats(v: Vector, dtype: np.dtype[Any], memo: _Memo[str, Vector]) -> str:
    a = np.asarray(v, dtype=dtype)
    s = _b64(a.tobytes())
    # What decoding gives back, exactly (the cast to ``dtype`` is already done): the next
    # read of this state (usually the very next request) need not decode it.
    memo.put(s, _frozen(a.astype(np.float32).reshape(-1)))
    return s


def _floats(s: str, dtype: np.dtype[Any]) -> Vector:
    return np.frombuffer(binascii.a2b_base64(s), dtype=dtype).astype(np.float32)


def encode_f32(v: Vector) -> str:
    return _encode_floats(v, _F4, _DECODED_F32)


def decode_f32(s: str) -> Vector:
    return _decode(_DECODED_F32, s, lambda x: _floats(x, _F4))


def encode_f16(v: Vector) -> str:
    return _encode_floats(v, _F2, _DECODED_F16)


def decode_f16(s: str) -> Vector:
    return _decode(_DECODED_F16, s, lambda x: _floats(x, _F2))


def _encode_unit_i8(a: Vector) -> str:
    m = float(np.max(np.abs(a))) or 1.0
    q = np.clip(np.rint(a / m * 127.0), -127, 127).astype(np.int8)
    return _b64(q.tobytes())


def encode_unit_i8(v: Vector) -> str:
    """A unit vector in 8 bits per coordinate (scale is implied: decode renormalises)."""
    a = np.asarray(v, dtype=np.float32)
    key = a.tobytes()
    s = _ENCODED_I8.get(key)
    if s is None:
        s = _encode_unit_i8(a)
        _ENCODED_I8.put(key, s)
    return s


def _decode_unit_i8(s: str) -> Vector:
    return unit(np.frombuffer(binascii.a2b_base64(s), dtype=_I8).astype(np.float32))


def decode_unit_i8(s: str) -> Vector:
    return _decode(_DECODED_I8, s, _decode_unit_i8)


@dataclass
class UserState:
    user_id: str
    policy: str
    target: Vector | None = None  # unit-norm learned taste (None before any signal)
    events: int = 0  # distinct feedback events applied
    engagement: float = 0.0  # total dwell seconds (capped per event)
    last_active: float = 0.0  # unix seconds of the last feedback
    seen: SeenSet = field(default_factory=SeenSet)
    dwell: DwellStats = field(default_factory=DwellStats)
    # Policy-specific, JSON-safe fields owned by ``policy`` (moments, window, ...). A user
    # moved to another policy starts that policy's part afresh from the shared fields.
    data: dict[str, Any] = field(default_factory=dict)

    def is_seen(self, item_id: str) -> bool:
        return item_id in self.seen

    def mark_seen(self, item_ids: list[str] | tuple[str, ...]) -> None:
        self.seen.add(item_ids)

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
            d["seen"] = self.seen.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserState:
        fmt = d.get("format")
        if fmt != FORMAT and fmt not in LEGACY_FORMATS:
            raise BadState(f"user state format {fmt!r} is not {FORMAT}")
        try:
            user_id, policy = str(d["user_id"]), str(d["policy"])
        except KeyError as exc:
            raise BadState(f"user state has no {exc}") from exc
        fix = _Repair(user_id)
        seen_raw = d.get("seen")
        if fmt in LEGACY_FORMATS or isinstance(seen_raw, list):
            seen = fix(lambda: SeenSet.from_list(str(s) for s in seen_raw or []),
                       "seen", SeenSet)
        else:
            seen = fix(lambda: SeenSet.from_dict(dict(seen_raw or {})), "seen", SeenSet)
        return cls(
            user_id=user_id,
            policy=policy,
            target=fix(lambda: _target(d.get("target")), "target", lambda: None),
            events=fix(lambda: _count(d.get("events", 0)), "events", lambda: 0),
            engagement=fix(lambda: _seconds(d.get("engagement", 0.0), None), "engagement",
                           lambda: 0.0),
            last_active=fix(lambda: _last_active(d.get("last_active", 0.0), user_id), "last_active",
                            lambda: 0.0),
            seen=seen,
            dwell=fix(lambda: DwellStats.from_dict(dict(d.get("dwell") or {})), "dwell",
                      DwellStats),
            data=fix(lambda: dict(d.get("data") or {}), "data", dict),
        )

    def size_bytes(self) -> int:
        """Serialised JSON size without the seen set (the policies' own part of the state)."""
        return len(json.dumps(self.to_dict(with_seen=False), separators=(",", ":")))


T = TypeVar("T")


class _Repair:
    """Decode one field of a stored state; on a bad value log it and use a default."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id

    def __call__(self, decode: Callable[[], T], name: str, default: Callable[[], T]) -> T:
        try:
            return decode()
        except (BadState, KeyError, TypeError, ValueError, OverflowError) as exc:
            log.warning("user %r: stored %s is invalid (%s); reset", self.user_id, name, exc)
            return default()


def _target(v: Any) -> Vector | None:
    if v is None:
        return None
    a = decode_f32(v)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError("not a finite vector")
    return a


def _count(v: Any) -> int:
    n = int(v)
    if n < 0:
        raise ValueError(f"negative count {n}")
    return n


def _seconds(v: Any, top: float | None) -> float:
    x = float(v)
    if not math.isfinite(x) or x < 0 or (top is not None and x > top):
        raise ValueError(f"{x!r} is not a valid number of seconds")
    return x


def _last_active(v: Any, user_id: str) -> float:
    """Unix seconds; a stored value in milliseconds (an old version took a client's ``ts``
    as given) is read as such, with a warning."""
    x = float(v)
    if math.isfinite(x) and MAX_UNIX_S < x <= MAX_UNIX_S * 1000:
        log.warning("user %r: stored last_active %r looks like milliseconds; read as %r s",
                    user_id, x, x / 1000)
        x /= 1000
    return _seconds(x, MAX_UNIX_S)

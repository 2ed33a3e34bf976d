"""What a user has seen, in bounded space: recent ids exactly, older ones as fingerprints.

The no-repeat promise needs every item a user was ever shown, and a heavy user sees tens
of thousands; as a list of 32-hex ids that is ~700 KB per user at 20,000, rewritten on
every request. Here the most recent ``RECENT`` ids are kept exactly (they are what the
store's queries exclude with an id filter; 32-hex ids, the indexer's content hashes, are
stored as 16 bytes each), and older ones are folded, ``FOLD`` at a time, into a sorted
set of short fingerprints of their ids (``fingerprint_bits``: 25 bits up to 4,096 ids,
one bit less each time the count doubles), stored as an Elias-Fano code of about
``bits - log2(n) + 2`` bits per id: ~32 KB of base64 at 20,000 ids.

Fingerprints never forget: a seen item is never shown again (no false repeats). Two ids
can share a fingerprint, so an unseen item whose fingerprint matches an older seen one is
wrongly treated as seen and never shown: each unseen item has probability
``n_old / 2^bits`` of that: under 1/8,192 up to 4,096 folded ids, then between 1/4,096
and 1/128 (4.7e-3 at 20,000 seen; ``benchmarks/bench_user_state.py`` measures it).

Queries exclude the exact part; the store wrapper in ``recommender.exclusion`` drops
candidates that hit the fingerprints and asks again for more when too few are left.
"""

from __future__ import annotations

import binascii
import hashlib
import struct
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recommender.errors import BadState

RECENT = 128  # most recent seen ids kept exactly (the store's id filter excludes these)
FOLD = 64  # ids moved into the fingerprints at a time (so they are re-encoded rarely)
MAX_BITS = 25  # fingerprint width up to 4,096 folded ids
_HEADER = struct.Struct("<IBB")  # count, fingerprint bits, low bits per value
U32 = NDArray[np.uint32]
_EMPTY: U32 = np.zeros(0, np.uint32)


def fingerprint_bits(n: int) -> int:
    """Fingerprint width for ``n`` ids: one bit less each time ``n`` doubles past 4,096,
    which keeps the code near 10 bits per id and the false-hide rate under 1/128."""
    return MAX_BITS - max(0, (n - 1) >> 12).bit_length()


def fingerprint(item_id: str, bits: int) -> int:
    digest = hashlib.blake2b(item_id.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little") >> (32 - bits)


def _low_bits(n: int, bits: int) -> int:
    return max(0, bits - int(n).bit_length())


def encode_fingerprints(values: U32, bits: int) -> str:
    """Sorted distinct ``bits``-bit fingerprints as base64 Elias-Fano: each value's low
    ``L`` bits verbatim, its high part in unary (one set bit at ``high + index``)."""
    v = np.asarray(values, dtype=np.uint32)
    n = int(v.size)
    if n == 0:
        return binascii.b2a_base64(_HEADER.pack(0, bits, 0), newline=False).decode("ascii")
    low = _low_bits(n, bits)
    # Each value's bits, least significant first, cut to its low ``L``.
    low_bits = np.unpackbits(v.astype("<u4").view(np.uint8).reshape(n, 4), axis=1,
                             bitorder="little")[:, :low]
    highs = (v >> np.uint32(low)).astype(np.int64) + np.arange(n, dtype=np.int64)
    high_bits = np.zeros(n + (1 << (bits - low)) + 1, np.uint8)
    high_bits[highs] = 1
    data = (_HEADER.pack(n, bits, low) + np.packbits(low_bits.ravel(), bitorder="little").tobytes()
            + np.packbits(high_bits, bitorder="little").tobytes())
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def decode_fingerprints(s: str) -> tuple[U32, int]:
    """(sorted fingerprints, their width in bits) from ``encode_fingerprints``."""
    try:
        data = binascii.a2b_base64(s)
        n, bits, low = _HEADER.unpack_from(data)
        if not 0 < bits <= 32 or low > bits:
            raise ValueError(f"bad widths {bits}/{low}")
        if n == 0:
            return _EMPTY, bits
        low_len = (n * low + 7) // 8
        lows_raw = np.frombuffer(data, np.uint8, low_len, _HEADER.size)
        lows = np.zeros((n, 32), np.uint8)
        lows[:, :low] = np.unpackbits(lows_raw, bitorder="little")[: n * low].reshape(n, low)
        low_vals = np.packbits(lows, axis=1, bitorder="little").view("<u4").reshape(n)
        high_raw = np.frombuffer(data, np.uint8, offset=_HEADER.size + low_len)
        ones = np.flatnonzero(np.unpackbits(high_raw, bitorder="little"))[:n]
        if ones.size != n:
            raise ValueError("truncated")
        highs = (ones - np.arange(n)).astype(np.uint32)
        return ((highs << np.uint32(low)) | low_vals).astype(np.uint32), bits
    except (binascii.Error, struct.error, ValueError) as exc:
        raise BadState(f"seen fingerprints could not be decoded: {exc}") from exc


class SeenSet:
    """Every item a user has seen: ``in`` is exact for recent ids and answers from the
    fingerprints for older ones; ``len`` counts all of them.

    Not iterable on purpose: only the recent part is known by id (``recent``)."""

    def __init__(self, recent: Iterable[str] = (), old: str | None = None, old_count: int = 0,
                 *, keep: int = RECENT, fold: int = FOLD) -> None:
        self.keep, self.fold = keep, fold
        self._recent: dict[str, None] = dict.fromkeys(recent)
        self._old_code = old  # encoded fingerprints, as stored (re-encoded only on a fold)
        self._old: U32 | None = None if old else _EMPTY
        self._bits = MAX_BITS
        self._old_count = int(old_count)

    # --- reading -----------------------------------------------------------------------
    @property
    def recent(self) -> list[str]:
        """The most recent seen ids, oldest first: the part queries exclude by id."""
        return list(self._recent)

    @property
    def exact(self) -> frozenset[str]:
        return frozenset(self._recent)

    @property
    def old_count(self) -> int:
        """Ids folded into the fingerprints."""
        return self._old_count

    def old_fingerprints(self) -> U32:
        if self._old is None:
            assert self._old_code is not None
            self._old, self._bits = _decode_memo(self._old_code)
        return self._old

    def in_old(self, item_id: str) -> bool:
        if not self._old_count:
            return False
        old = self.old_fingerprints()
        f = fingerprint(item_id, self._bits)
        i = int(np.searchsorted(old, f))
        return i < old.size and int(old[i]) == f

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and (item_id in self._recent or self.in_old(item_id))

    def __len__(self) -> int:
        return len(self._recent) + self._old_count

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeenSet) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    # --- changing ----------------------------------------------------------------------
    def add(self, item_ids: Iterable[str]) -> None:
        for i in item_ids:
            if i not in self:
                self._recent[i] = None
        if len(self._recent) >= self.keep + self.fold:
            self._fold(len(self._recent) - self.keep)

    def _fold(self, n: int) -> None:
        ids = list(self._recent)[:n]
        for i in ids:
            del self._recent[i]
        old = self.old_fingerprints()
        count = self._old_count + len(ids)
        bits = min(self._bits, fingerprint_bits(count))
        if bits < self._bits:  # narrower fingerprints: the old ones' leading bits
            old = old >> np.uint32(self._bits - bits)
        new = np.unique(np.fromiter((fingerprint(i, bits) for i in ids), np.uint32, len(ids)))
        # Insert the new ones in place (np.union1d would sort everything again: 5x slower).
        at = np.searchsorted(old, new)
        there = np.zeros(new.size, bool)
        if old.size:
            there = (at < old.size) & (old[np.minimum(at, old.size - 1)] == new)
        merged = np.insert(old, at[~there], new[~there]).astype(np.uint32)
        self._old, self._bits, self._old_count = merged, bits, count
        self._old_code = encode_fingerprints(merged, bits)
        _DECODED.put(self._old_code, (merged, bits))

    # --- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"recent": _pack_ids(list(self._recent))}
        if self._old_count:
            d["old"] = self._old_code
            d["old_count"] = self._old_count
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeenSet:
        recent = _unpack_ids(d.get("recent", []))
        old = d.get("old")
        if old is not None and not isinstance(old, str):
            raise BadState("seen fingerprints are not a string")
        count = int(d.get("old_count", 0)) if old else 0
        if count < 0:
            raise BadState("seen count is negative")
        return cls(recent, old or None, count)

    @classmethod
    def from_list(cls, ids: Iterable[str]) -> SeenSet:
        """From a full list of seen ids, oldest first (the format before fingerprints)."""
        s = cls()
        s._recent = dict.fromkeys(str(i) for i in ids)
        if len(s._recent) > s.keep:
            s._fold(len(s._recent) - s.keep)
        return s


def _pack_ids(ids: list[str]) -> str | list[str]:
    """32-hex ids (the indexer's) as base64 of their bytes (21 characters instead of 35 in
    a JSON list); any other ids as they are."""
    joined = "".join(ids)
    if ids and len(joined) == 32 * len(ids):
        try:
            raw = bytes.fromhex(joined)
        except ValueError:
            return ids
        if raw.hex() == joined:  # lower-case hex only: it must come back the same
            return "h" + binascii.b2a_base64(raw, newline=False).decode("ascii")
    return ids


def _unpack_ids(packed: Any) -> list[str]:
    if isinstance(packed, str):
        if not packed.startswith("h"):
            raise BadState("recent seen ids are not in a known packing")
        try:
            joined = binascii.a2b_base64(packed[1:]).hex()
        except binascii.Error as exc:
            raise BadState(f"recent seen ids could not be decoded: {exc}") from exc
        return [joined[i:i + 32] for i in range(0, len(joined), 32)]
    return [str(s) for s in packed]


class _DecodeMemo:
    """Decoded fingerprints by their code: the same user's next request decodes nothing."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._d: dict[str, tuple[U32, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[U32, int] | None:
        return self._d.get(key)

    def put(self, key: str, value: tuple[U32, int]) -> None:
        value[0].flags.writeable = False
        with self._lock:
            if key not in self._d and len(self._d) >= self.size:
                self._d.pop(next(iter(self._d)), None)
            self._d[key] = value


_DECODED = _DecodeMemo(256)


def _decode_memo(code: str) -> tuple[U32, int]:
    got = _DECODED.get(code)
    if got is None:
        got = decode_fingerprints(code)
        _DECODED.put(code, got)
    return got

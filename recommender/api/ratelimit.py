"""Request rate limits per user and per key, so that one client cannot starve the others.

Sliding-window counters, checked after authentication:

- per user (``SUMO_RATE_LIMIT_USER``): every request on ``/v1/users/{id}/...`` counts for
  that user whoever sends it, and every request with a user's token counts for its user;
- per key (``SUMO_RATE_LIMIT_KEY``): every request with the service or the admin key.

Counts live in ``SUMO_RATE_LIMIT_STORAGE``: ``memory://`` keeps them per process (each
replica counts its own share: ``LocalWindows``); a shared store (``redis://host:6379``, with
the ``limits[async-redis]`` extra installed) makes them exact across replicas, through the
``limits`` library, whose syntax (``50/second``) every limit is written in. Limits per
client address belong to the reverse proxy in front (see deploy/README.md).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio import strategies as aio_strategies
from limits.storage import storage_from_string

from recommender.api.errors import RateLimited
from recommender.api.security import Caller, Role
from recommender.settings import Settings


class RateLimiter:
    def __init__(self, user_limits: str, key_limits: str, storage: str) -> None:
        self.user_limits = _parse(user_limits)
        self.key_limits = _parse(key_limits)
        # In memory, counting is a few microseconds of CPU: done inline. A shared store is
        # network I/O: awaited.
        self.local: LocalWindows | None = None
        self.shared: aio_strategies.SlidingWindowCounterRateLimiter | None = None
        if storage.startswith("memory://"):
            self.local = LocalWindows()
        else:
            uri = storage if storage.startswith("async+") else f"async+{storage}"
            self.shared = aio_strategies.SlidingWindowCounterRateLimiter(storage_from_string(uri))

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter | None:
        limiter = cls(settings.rate_limit_user, settings.rate_limit_key,
                      settings.rate_limit_storage)
        return limiter if limiter.user_limits or limiter.key_limits else None

    async def check(self, caller: Caller, path_user: str | None) -> None:
        """Count one request; raises ``RateLimited`` when a limit is used up."""
        user = path_user or caller.user_id
        if user is not None:
            await self._hit(self.user_limits, "user", user)
        if caller.role in (Role.SERVICE, Role.ADMIN):
            await self._hit(self.key_limits, "key", caller.role.value)

    async def _hit(self, items: list[RateLimitItem], scope: str, who: str) -> None:
        for item in items:
            if self.local is not None:
                wait_s = self.local.hit(item, (scope, who), time.monotonic())
                if wait_s is None:
                    continue
            else:
                assert self.shared is not None
                if await self.shared.hit(item, scope, who):
                    continue
                reset = (await self.shared.get_window_stats(item, scope, who)).reset_time
                wait_s = reset - time.time()
            raise RateLimited(f"over the {scope} rate limit of {item}: retry later",
                              max(1, math.ceil(wait_s)))


class LocalWindows:
    """Sliding-window counters in this process, kept without a background thread.

    The estimate is the ``limits`` library's: the previous window's count, weighted by the
    share of it still inside the sliding window and rounded down, plus the current
    window's count. Its in-memory store sweeps expired keys from a ``threading.Timer`` it
    restarts whenever the last one has run out (after 10 ms), so at a service's pace nearly
    every request started a thread and waited for it to run: ~0.27 ms of a request's
    latency here, where counting costs microseconds (``benchmarks/bench_auth.py``). Here
    stale keys are swept inline, once per ``SWEEP_S``. Used from the event loop only, so
    no lock.
    """

    SWEEP_S = 60.0

    def __init__(self) -> None:
        # key -> (window length s, window number, previous window's count, this one's)
        self._windows: dict[tuple[str, str, str], tuple[float, int, int, int]] = {}
        self._next_sweep = 0.0

    def hit(self, item: RateLimitItem, who: tuple[str, str], now: float) -> float | None:
        """Count one request at ``now`` (monotonic seconds) and return None, or, with the
        limit used up, count nothing and return the seconds until one more would fit."""
        if now >= self._next_sweep:
            self._sweep(now)
        key = (*who, str(item))
        length, amount = float(item.get_expiry()), item.amount
        number, at = divmod(now, length)
        _, last, previous, current = self._windows.get(key, (length, int(number), 0, 0))
        if int(number) != last:  # a new window: the old current one becomes the previous
            previous, current = (current if int(number) == last + 1 else 0), 0
        left = 1.0 - at / length  # share of the previous window still inside the slide
        if math.floor(previous * left) + current + 1 > amount:
            return self._wait(previous, current, amount, left, length)
        self._windows[key] = (length, int(number), previous, current + 1)
        return None

    @staticmethod
    def _wait(previous: int, current: int, amount: int, left: float, length: float) -> float:
        """Seconds until ``floor(previous * share) + current + 1 <= amount`` as the share
        slides (the moment it first holds: callers round up)."""
        room = amount - current  # floor(previous * share) must fall below this
        if room > 0 and previous > 0:  # the previous window's weight fades in time
            return max(0.0, left - room / previous) * length
        # This window alone is full: in the next one it is the previous, fading from 1.
        return left * length + max(0.0, 1.0 - amount / max(current, 1)) * length

    def _sweep(self, now: float) -> None:
        self._windows = {
            key: w for key, w in self._windows.items() if now // w[0] <= w[1] + 1
        }
        self._next_sweep = now + self.SWEEP_S


def _parse(text: str) -> list[RateLimitItem]:
    return parse_many(text) if text.strip() else []

"""Request rate limits per user and per key, so that one client cannot starve the others.

Counted with the ``limits`` library (sliding-window counters) after authentication:

- per user (``SUMO_RATE_LIMIT_USER``): every request on ``/v1/users/{id}/...`` counts for
  that user whoever sends it, and every request with a user's token counts for its user;
- per key (``SUMO_RATE_LIMIT_KEY``): every request with the service or the admin key.

Counts live in ``SUMO_RATE_LIMIT_STORAGE``: ``memory://`` keeps them per process (each
replica counts its own share); a shared store (``redis://host:6379``, with the
``limits[async-redis]`` extra installed) makes them exact across replicas. Limits per
client address belong to the reverse proxy in front (see deploy/README.md).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many, strategies
from limits.aio import strategies as aio_strategies
from limits.storage import storage_from_string

from recommender.api.errors import RateLimited
from recommender.api.security import Caller, Role
from recommender.settings import Settings


class RateLimiter:
    def __init__(self, user_limits: str, key_limits: str, storage: str) -> None:
        self.user_limits = _parse(user_limits)
        self.key_limits = _parse(key_limits)
        # In memory, counting is a few microseconds of CPU: done inline (the async memory
        # store would also start a task per count that sweeps every key). A shared store
        # is network I/O: awaited.
        self.local: strategies.SlidingWindowCounterRateLimiter | None = None
        self.shared: aio_strategies.SlidingWindowCounterRateLimiter | None = None
        if storage.startswith("memory://"):
            self.local = strategies.SlidingWindowCounterRateLimiter(storage_from_string(storage))
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
                if self.local.hit(item, scope, who):
                    continue
                reset = self.local.get_window_stats(item, scope, who).reset_time
            else:
                assert self.shared is not None
                if await self.shared.hit(item, scope, who):
                    continue
                reset = (await self.shared.get_window_stats(item, scope, who)).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise RateLimited(f"over the {scope} rate limit of {item}: retry later", wait)


def _parse(text: str) -> list[RateLimitItem]:
    return parse_many(text) if text.strip() else []

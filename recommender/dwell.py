"""Dwell time in, a per-user robust score out.

People differ: a slow reader's "skip" can last longer than a fast scroller's "love". So a
dwell is scored against the same user's recent dwells, on a log scale (dwell times are
heavy-tailed: roughly lognormal), with median and MAD rather than mean and deviation (one
phone left on the table must not redefine "long"). Before a user has history, a population
prior stands in and fades out as observations arrive.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_DWELL_MS = 3_600_000.0  # an hour on one image is a tab left open, not attention
FLICK_MS = 100.0  # shorter views are all the same "flick" (also keeps log finite at 0)
HISTORY = 32  # recent log-dwells kept per user
PRIOR_LOG_MEDIAN = math.log(2000.0)  # a typical glance at one feed image
PRIOR_SCALE = 0.8  # log-units; lognormal dwell spreads seen in feed studies are ~0.7-1.2
PRIOR_WEIGHT = 4.0  # the prior counts as this many observations at first...
PRIOR_FADE = 16  # ...and not at all after this many
MIN_SCALE = 0.25  # a user who always dwells the same still has some noise
Z_CLIP = 3.0


def validate_dwell(dwell_ms: object) -> str | None:
    """``None`` if ``dwell_ms`` is a plausible dwell time, else the reason it is not."""
    numeric = int | float | np.floating | np.integer
    if isinstance(dwell_ms, bool) or not isinstance(dwell_ms, numeric):
        return "dwell_ms must be a number"
    value = float(dwell_ms)
    if math.isnan(value) or math.isinf(value):
        return "dwell_ms must be finite"
    if value < 0:
        return "dwell_ms must not be negative"
    if value > MAX_DWELL_MS:
        return f"dwell_ms over {int(MAX_DWELL_MS)} ms (one hour) is not attention"
    return None


def log_dwell(dwell_ms: float) -> float:
    return math.log(max(float(dwell_ms), FLICK_MS))


def _median(xs: list[float]) -> float:
    """``np.median`` of a short list, without numpy's ~15 us of overhead per call (the
    history holds at most ``HISTORY`` values; every feedback event takes two)."""
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])


@dataclass
class DwellStats:
    """Recent log-dwells of one user; scores new dwells against them."""

    history: list[float] = field(default_factory=list)
    count: int = 0  # dwells ever recorded (the history keeps the last ``HISTORY``)

    def location_scale(self) -> tuple[float, float]:
        n = len(self.history)
        if n == 0:
            return PRIOR_LOG_MEDIAN, PRIOR_SCALE
        med = _median(self.history)
        mad = _median([abs(x - med) for x in self.history]) * 1.4826
        prior = PRIOR_WEIGHT * max(0.0, 1.0 - self.count / PRIOR_FADE)
        w = n / (n + prior)
        loc = w * med + (1 - w) * PRIOR_LOG_MEDIAN
        scale = w * mad + (1 - w) * PRIOR_SCALE
        return loc, max(scale, MIN_SCALE)

    def score(self, dwell_ms: float) -> float:
        """Robust z-score of one dwell for this user, clipped to ±3, without recording it."""
        loc, scale = self.location_scale()
        z = (log_dwell(dwell_ms) - loc) / scale
        return float(min(max(z, -Z_CLIP), Z_CLIP))

    def add(self, dwell_ms: float) -> float:
        """Score a dwell, then remember it. Returns the score."""
        z = self.score(dwell_ms)
        self.history.append(round(log_dwell(dwell_ms), 3))
        self.count += 1
        if len(self.history) > HISTORY:
            del self.history[: len(self.history) - HISTORY]
        return z

    def to_dict(self) -> dict[str, Any]:
        return {"history": list(self.history), "count": self.count}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DwellStats:
        history = [float(x) for x in d.get("history", [])][-HISTORY:]
        return cls(history=history, count=int(d.get("count", len(history))))


# Feedback times: from 2000-01-01 to a day ahead of the server's clock (client clocks
# drift). Anything else is a unit mistake (milliseconds, as JavaScript's Date.now() gives)
# or garbage that would corrupt the user's record.
TS_MIN = 946_684_800.0
TS_AHEAD_S = 86_400.0


def validate_ts(ts: float | None, now: float | None = None) -> str | None:
    """``None`` if ``ts`` (unix seconds) is a plausible time of a view, else the reason."""
    if ts is None:
        return None
    latest = (time.time() if now is None else now) + TS_AHEAD_S
    if math.isfinite(ts) and TS_MIN <= ts <= latest:
        return None
    reason = "ts must be seconds since the epoch, between 2000-01-01 and one day from now"
    if math.isfinite(ts) and TS_MIN <= ts / 1000 <= latest:
        reason += f"; this looks like milliseconds: send ts / 1000 ({ts / 1000:.3f})"
    return reason

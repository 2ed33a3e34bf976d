"""Progress for people: a tqdm bar on a terminal, plain periodic log lines otherwise
(so logs of a nightly run stay readable and a supervising process can follow along)."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import TextIO

log = logging.getLogger("indexer.ingest")


def _duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s // 60 % 60:02d}m"


class Progress:
    """Counts processed files out of ``total``; rate and ETA cover this run only.

    The bar's rate is the plain average since the start (tqdm's ``smoothing=0``), the same
    figure as ``line()`` and the run's summary (``elapsed`` stops at ``close``). While the
    bar is shown, log records go through ``tqdm.write`` so they never split its line.
    """

    def __init__(
        self, total: int, *, desc: str = "indexing", stream: TextIO | None = None,
        interval_s: float = 10.0, tty: bool | None = None, enabled: bool = True,
    ) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.desc = desc
        self.interval_s = interval_s
        self.start = time.monotonic()
        self._last_line = self.start
        self._last_step = 0
        self._closed_at: float | None = None
        self._redirect: contextlib.AbstractContextManager[None] | None = None
        stream = stream if stream is not None else sys.stderr
        self._bar = None
        if enabled and total > 0 and (tty if tty is not None else stream.isatty()):
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self.start = time.monotonic()
            self._bar = tqdm(
                total=total, desc=desc, unit="img", file=stream, smoothing=0,
                dynamic_ncols=True,
            )
            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()

    def elapsed(self) -> float:
        end = self._closed_at if self._closed_at is not None else time.monotonic()
        return end - self.start

    def rate(self) -> float:
        elapsed = self.elapsed()
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = _duration((self.total - self.done) / rate) if rate > 0 else "?"
        return f"{self.desc}: {self.done}/{self.total} ({pct:.0f}%), {rate:.1f} img/s, ETA {eta}"

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        if not self.enabled:
            return
        # A line every interval, and at each tenth of the way for short runs.
        now = time.monotonic()
        step = 10 * self.done // self.total if self.total else 10
        if now - self._last_line >= self.interval_s or step > self._last_step:
            self._last_line, self._last_step = now, step
            log.info(self.line())

    def close(self) -> None:
        if self._closed_at is None:
            self._closed_at = time.monotonic()
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None

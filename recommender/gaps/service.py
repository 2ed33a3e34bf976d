"""One cached gap report per process: the API, the page and the CLI show the same regions.

A report reads every user state and runs a few thousand nearest-neighbour queries (seconds
on a small deployment, minutes at 1M items and 100k users), so the service keeps the last
one for ``ttl_s`` and computes at most one at a time.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from indexer.embedder.text import TextEmbedder
from indexer.store.base import Store
from recommender.gaps.projection import project
from recommender.gaps.report import GapOptions, GapReport, build_report


class GapService:
    def __init__(
        self, store: Store, encoder: TextEmbedder | None = None, *,
        options: GapOptions | None = None, ttl_s: float = 300.0,
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.options = options or GapOptions()
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._report: GapReport | None = None
        self._map: dict[str, Any] | None = None
        self._at = 0.0

    def report(self, *, refresh: bool = False) -> GapReport:
        with self._lock:
            fresh = self._report is not None and time.monotonic() - self._at < self.ttl_s
            if refresh or not fresh:
                self._report = build_report(self.store, self.options, encoder=self.encoder)
                self._map = None
                self._at = time.monotonic()
            assert self._report is not None
            return self._report

    def as_dict(self, limit: int | None, *, refresh: bool = False, with_map: bool = False
                ) -> dict[str, Any]:
        rep = self.report(refresh=refresh)
        out = rep.to_dict(limit)
        if with_map:
            with self._lock:
                if self._map is None or self._report is not rep:
                    self._map = project(rep)
                out["map"] = self._map
        return out

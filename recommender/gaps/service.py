"""One cached gap report per process: the API, the page and the CLI show the same regions.

A report reads every user state and search and runs a few thousand nearest-neighbour
queries (seconds at 100k items and 10k users, ``benchmarks/bench_gaps.py``), so the service
keeps the last one for ``ttl_s`` and computes at most one at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from indexer.embedder.registry import has_random_weights
from indexer.embedder.text import TextEmbedder
from indexer.store.base import Store
from recommender.gaps.describe import concept_matrix, load_concepts
from recommender.gaps.projection import project
from recommender.gaps.report import GapOptions, GapReport, Progress, build_report

log = logging.getLogger(__name__)


class GapService:
    def __init__(
        self, store: Store, encoder: TextEmbedder | None = None, *,
        options: GapOptions | None = None, ttl_s: float = 300.0,
        progress: Progress | None = None,
        encoder_of: Callable[[], TextEmbedder | None] | None = None,
    ) -> None:
        self.store = store
        self._encoder = encoder
        # The app's text encoder may appear later (a replica started before the first
        # index run): then it is asked for at each report.
        self.encoder_of = encoder_of
        self.progress = progress
        self.options = options or GapOptions()
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._report: GapReport | None = None
        self._map: dict[str, Any] | None = None
        self._at = 0.0

    @property
    def encoder(self) -> TextEmbedder | None:
        return self.encoder_of() if self.encoder_of is not None else self._encoder

    def warm(self) -> None:
        """Embed the label vocabulary now (blocking; the app runs it in the background at
        start, logging progress), so the first report does not wait for it. Skipped for
        random weights, whose labels mean nothing, and when the disk cache has it anyway."""
        enc = self.encoder
        if enc is None or has_random_weights(enc.name):
            return
        t0 = time.monotonic()

        def said(done: int, total: int) -> None:
            log.info("gap labels: %d/%d vocabulary phrases embedded", done, total)

        concept_matrix(enc, load_concepts(), progress=said)
        log.info("gap labels ready in %.1f s", time.monotonic() - t0)

    def report(self, *, refresh: bool = False) -> GapReport:
        with self._lock:
            fresh = self._report is not None and time.monotonic() - self._at < self.ttl_s
            if refresh or not fresh:
                self._report = build_report(self.store, self.options, encoder=self.encoder,
                                            progress=self.progress)
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

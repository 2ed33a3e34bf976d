"""How clients drive the engine (``recommender.sim.clients``): the feed page's paging, as
``feed.js`` has it, replayed request by request, and both protocols over a real engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from indexer.store.edge import EdgeStore
from recommender.engine import Engine
from recommender.sim.clients import (
    EngineClient,
    FeedConstants,
    UnknownProtocol,
    View,
    batches,
    feed,
    feed_constants,
    protocol,
    run_protocol,
)
from recommender.sim.corpus import load_corpus, make_corpus
from recommender.sim.users import make_users


class Ledger:
    """A client that hands out fresh ids and writes down what the server would know: for
    every page asked for, the dwells it had been sent by then."""

    def __init__(self) -> None:
        self.next = 0
        self.sent: list[str] = []
        self.pages: list[tuple[int, list[str]]] = []  # (size, dwells known when asked)

    def recommend(self, limit: int) -> list[str]:
        self.pages.append((limit, list(self.sent)))
        ids = [f"i{self.next + k}" for k in range(limit)]
        self.next += limit
        return ids

    def feedback(self, events: Sequence[tuple[str, float]]) -> None:
        self.sent += [item for item, _ in events]


def views(dwell_ms: float) -> tuple[list[str], View]:
    shown: list[str] = []

    def view(item: str) -> float:
        shown.append(item)
        return dwell_ms

    return shown, view


def ids(n: int, start: int = 0) -> list[str]:
    return [f"i{k}" for k in range(start, start + n)]


def test_the_constants_are_read_from_the_page_itself() -> None:
    c = feed_constants()
    assert c.page > c.prefetch_at >= 1 and c.batch >= 1 and c.batch_ms > 0
    text = "const PAGE = 8;\nconst PREFETCH_AT = 3;\nconst FLUSH_MS = 0;\n" \
           "const BATCH = 3;\nconst BATCH_MS = 5000;\n"
    assert feed_constants(text) == FeedConstants(8, 3, 0.0, 3, 5000.0)
    with pytest.raises(UnknownProtocol, match="PAGE"):
        feed_constants("const PREFETCH_AT = 3;")


def test_a_page_is_asked_for_with_every_dwell_but_the_cards_still_ahead() -> None:
    ledger = Ledger()
    shown, view = views(1500.0)
    feed(FeedConstants(page=5, prefetch_at=2, flush_ms=1000, batch=3, batch_ms=5000))(
        ledger, view, 12)
    assert shown == ids(12)
    # Asked at cards 3 and 8 (two left): everything before the card on screen was sent.
    assert ledger.pages == [(5, []), (5, ids(3)), (5, ids(8))]
    assert ledger.sent == ids(11)  # the last view waits for two more or for the timer


def test_without_the_flush_a_page_misses_the_waiting_dwells() -> None:
    ledger = Ledger()
    _, view = views(1500.0)
    feed(FeedConstants(page=8, prefetch_at=3, flush_ms=0, batch=3, batch_ms=5000))(
        ledger, view, 13)
    # The page asked at card 5 knows cards 0-2 only: 3 and 4 wait for a third dwell.
    assert ledger.pages == [(8, []), (8, ids(3))]


def test_the_batch_timer_fires_on_the_simulated_clock() -> None:
    ledger = Ledger()
    _, view = views(6000.0)  # each look outlasts BATCH_MS: every dwell goes alone
    feed(FeedConstants(page=8, prefetch_at=3, flush_ms=0, batch=3, batch_ms=5000))(
        ledger, view, 6)
    assert ledger.pages == [(8, []), (8, ids(4))]
    assert ledger.sent == ids(5)


def test_the_benchmark_protocol_sends_every_dwell_before_asking_again() -> None:
    ledger = Ledger()
    shown, view = views(1000.0)
    batches(5)(ledger, view, 12)
    assert ledger.pages == [(5, []), (5, ids(5)), (2, ids(10))]
    assert shown == ledger.sent == ids(12)


def test_protocol_names() -> None:
    assert protocol("batch5") is not None and protocol("feed") is not None
    protocol("feed:PAGE=8;PREFETCH_AT=3;FLUSH_MS=0")
    for bad in ("batch0", "pages", "feed:NOPE=1", "feed:PAGE=x", "feed:PAGE"):
        with pytest.raises(UnknownProtocol):
            protocol(bad)


@pytest.mark.parametrize("name", ["batch5", "feed"])
def test_a_session_over_the_engine_never_repeats(name: str, tmp_path: Path) -> None:
    corpus = make_corpus(2000, dim=32, clusters=10, seed=4)
    user = make_users("broad", corpus, 1, seed=0)[0]
    with EdgeStore(tmp_path / "s") as store:
        load_corpus(store, corpus)
        client = EngineClient(Engine(store, seed=0), corpus, "u")
        run = run_protocol(client, protocol(name), corpus, user, np.random.default_rng(0), 40)
        c = feed_constants()
        sent = client.state.dwell.count
    assert len(run.shown) == len(set(run.shown)) == 40
    assert (run.expected > 0).all()
    if name == "batch5":
        assert sent == 40
    else:  # views ahead of the last full batch may still wait for the timer
        assert 40 - c.batch < sent <= 40


def test_the_user_document_loses_nothing_the_engine_learns_from(tmp_path: Path) -> None:
    """The service stores the state between requests; the benchmark keeps it in memory.
    Over an exact store, the same user and draws must be shown the same items either way."""
    corpus = make_corpus(2000, dim=32, clusters=10, seed=4)
    user = make_users("niche", corpus, 1, seed=1)[0]
    with EdgeStore(tmp_path / "s", exact=True) as store:
        load_corpus(store, corpus)
        runs = [run_protocol(EngineClient(Engine(store, seed=3), corpus, "u", stored=stored),
                             protocol("feed"), corpus, user, np.random.default_rng(5), 40)
                for stored in (False, True)]
    assert runs[0].shown == runs[1].shown
